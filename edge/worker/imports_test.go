//go:build !js

package worker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
)

// TestGlueLinkage builds the Worker and the per-request benchmark build and
// checks their WebAssembly imports and exports against what each glue
// provides: the one-instance glue (glue/worker.mjs) must provide every
// "edgepoll" import the Worker has and call every ep_ export it needs, and
// the per-request build, which runs under syumai/workers' generated glue,
// must have none of them (an unresolvable import fails every request).
func TestGlueLinkage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two wasm binaries; run without -short")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	build := func(name, pkg string, tags ...string) (imports, exports []string) {
		out := filepath.Join(dir, name+".wasm")
		args := []string{"build", "-trimpath", "-o", out}
		if len(tags) > 0 {
			args = append(args, "-tags", tags[0])
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		if log, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, log)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		imports, exports, err = wasmLinkage(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return imports, exports
	}

	glue, err := os.ReadFile(filepath.Join(root, "edge", "worker", "glue", "worker.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	imports, exports := build("worker", "./edge/cmd/worker")
	ours := 0
	for _, imp := range imports {
		mod, name, _ := bytes.Cut([]byte(imp), []byte("."))
		switch string(mod) {
		case "edgepoll", "workers":
			ours++
			if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(string(name)) + `: \(`).Match(glue) {
				t.Errorf("the Worker imports %s, which glue/worker.mjs does not provide", imp)
			}
		case "gojs":
		default:
			t.Errorf("unexpected import %s", imp)
		}
	}
	if ours == 0 {
		t.Errorf("the Worker imports nothing from the glue: %v", imports)
	}
	for _, want := range []string{"ep_request", "ep_grow", "ep_op_done"} {
		if !slices.Contains(exports, want) {
			t.Errorf("the Worker does not export %s (exports: %v)", want, exports)
		}
		if !bytes.Contains(glue, []byte("exports."+want+"(")) {
			t.Errorf("glue/worker.mjs never calls %s", want)
		}
	}

	// The glue passes only the request headers the handler reads.
	m := regexp.MustCompile(`const requestHeaders = \[([^\]]*)\]`).FindSubmatch(glue)
	if m == nil {
		t.Fatal("glue/worker.mjs has no requestHeaders list")
	}
	var want []string
	for _, h := range edge.RequestHeaders {
		want = append(want, `"`+strings.ToLower(h)+`"`)
	}
	if got := string(m[1]); got != strings.Join(want, ", ") {
		t.Errorf("glue/worker.mjs passes headers [%s], edge.RequestHeaders is [%s]", got, strings.Join(want, ", "))
	}

	imports, exports = build("perrequest", "./edge/worker/bench/perrequest", "edgepoll_perrequest")
	for _, imp := range imports {
		if mod, _, _ := bytes.Cut([]byte(imp), []byte(".")); string(mod) == "edgepoll" {
			t.Errorf("the per-request build imports %s, which syumai's glue does not provide", imp)
		}
	}
	for _, e := range exports {
		if strings.HasPrefix(e, "ep_") {
			t.Errorf("the per-request build exports %s", e)
		}
	}
}

// wasmLinkage lists a WebAssembly module's imports ("module.name") and exports.
func wasmLinkage(b []byte) (imports, exports []string, err error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, nil, errors.New("not a wasm module")
	}
	r := bytes.NewReader(b[8:])
	uvarint := func() uint64 {
		v, e := binary.ReadUvarint(r)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	name := func() string {
		n := uvarint()
		if n > uint64(r.Len()) {
			err = errors.New("name past the end")
			return ""
		}
		s := make([]byte, n)
		_, _ = r.Read(s)
		return string(s)
	}
	limits := func() {
		flags, _ := r.ReadByte()
		uvarint()
		if flags&1 != 0 {
			uvarint()
		}
	}
	for r.Len() > 0 && err == nil {
		id, _ := r.ReadByte()
		size := uvarint()
		if size > uint64(r.Len()) {
			return nil, nil, errors.New("section past the end")
		}
		end := r.Len() - int(size)
		switch id {
		case 2: // imports
			for n := uvarint(); n > 0 && err == nil; n-- {
				mod, field := name(), name()
				imports = append(imports, mod+"."+field)
				switch kind, _ := r.ReadByte(); kind {
				case 0: // func: type index
					uvarint()
				case 1: // table: reftype, limits
					_, _ = r.ReadByte()
					limits()
				case 2: // memory
					limits()
				case 3: // global: valtype, mutability
					_, _ = r.ReadByte()
					_, _ = r.ReadByte()
				default:
					return nil, nil, errors.New("unknown import kind")
				}
			}
		case 7: // exports
			for n := uvarint(); n > 0 && err == nil; n-- {
				exports = append(exports, name())
				_, _ = r.ReadByte()
				uvarint()
			}
		}
		if _, e := r.Seek(int64(len(b)-8-end), 0); e != nil {
			return nil, nil, e
		}
	}
	return imports, exports, err
}
