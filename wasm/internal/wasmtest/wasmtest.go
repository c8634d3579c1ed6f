// Package wasmtest builds wasm guest modules for tests, once per test binary,
// with standard Go and, when a TinyGo toolchain is installed, with TinyGo.
package wasmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgepoll/edgepoll/internal/tinygotest"
)

// Guest packages.
const (
	EdgeGuest   = "github.com/edgepoll/edgepoll/wasm/guest"
	FaultyGuest = "github.com/edgepoll/edgepoll/wasm/testdata/faultyguest"
)

// Toolchains a guest is built with.
const (
	Go     = "go"
	TinyGo = "tinygo"
)

// TinyGoFlags are the flags TinyGo guests are built with, the same as
// scripts/build-wasm.sh tinygo uses (see README.md, Building with TinyGo).
var TinyGoFlags = []string{"-target=wasip1", "-buildmode=c-shared", "-no-debug", "-scheduler=asyncify", "-stack-size=32KB"}

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

// Toolchains lists the toolchains guests are tested with: Go always, TinyGo
// too (its subtests skip with tinygotest.NoTinyGo when it is not installed,
// so a run says what it did not test).
func Toolchains() []string { return []string{Go, TinyGo} }

// Build compiles pkg with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
// (and -ldflags when given) the first time it is asked for in this test
// binary, and returns the module's bytes. It fails tb if the build fails.
func Build(tb testing.TB, pkg, ldflags string) []byte {
	tb.Helper()
	return BuildWith(tb, Go, pkg, ldflags)
}

// BuildWith is Build with toolchain Go or TinyGo (tinygo build with
// TinyGoFlags). A TinyGo build skips tb when TinyGo is not installed.
func BuildWith(tb testing.TB, toolchain, pkg, ldflags string) []byte {
	tb.Helper()
	if toolchain == TinyGo {
		tinygotest.Require(tb)
	}
	key := toolchain + "|" + pkg + "|" + ldflags
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
		var cmd *exec.Cmd
		switch toolchain {
		case TinyGo:
			args := append([]string{"build", "-o", out}, TinyGoFlags...)
			// EDGEPOLL_TINYGOFLAGS adds flags (to try a scheduler, a GC or a
			// stack size); later flags win.
			args = append(args, strings.Fields(os.Getenv("EDGEPOLL_TINYGOFLAGS"))...)
			if ldflags != "" {
				args = append(args, "-ldflags="+ldflags)
			}
			cmd = exec.Command("tinygo", append(args, pkg)...)
		default:
			args := []string{"build", "-buildmode=c-shared", "-o", out}
			if ldflags != "" {
				args = append(args, "-ldflags="+ldflags)
			}
			cmd = exec.Command("go", append(args, pkg)...)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = "wasmtest: " + strings.Join(cmd.Args, " ") + ": " + err.Error() + "\n" + string(msg)
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
