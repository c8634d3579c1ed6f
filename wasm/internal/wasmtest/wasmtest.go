// Package wasmtest builds wasm guest modules for tests, once per test binary.
package wasmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Guest packages.
const (
	EdgeGuest   = "github.com/edgepoll/edgepoll/wasm/guest"
	FaultyGuest = "github.com/edgepoll/edgepoll/wasm/testdata/faultyguest"
)

var (
	mu     sync.Mutex
	dir    string
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	wasm []byte
	err  string
}

// Build compiles pkg with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
// (and -ldflags when given) the first time it is asked for in this test
// binary, and returns the module's bytes. It fails tb if the build fails.
func Build(tb testing.TB, pkg, ldflags string) []byte {
	tb.Helper()
	key := pkg + "|" + ldflags
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "edgepoll-wasmtest-")
		if err != nil {
			mu.Unlock()
			tb.Fatalf("wasmtest: %v", err)
		}
		dir = d
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", "|", "_", " ", "_", "=", "_").Replace(key)+".wasm")
	mu.Unlock()
	b.once.Do(func() {
		args := []string{"build", "-buildmode=c-shared", "-o", out}
		if ldflags != "" {
			args = append(args, "-ldflags="+ldflags)
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = "wasmtest: go " + strings.Join(args, " ") + " " + pkg + ": " + err.Error() + "\n" + string(msg)
			return
		}
		wasm, err := os.ReadFile(out)
		if err != nil {
			b.err = "wasmtest: " + err.Error()
			return
		}
		b.wasm = wasm
	})
	if b.err != "" {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// Cleanup removes the built modules; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
	}
}
