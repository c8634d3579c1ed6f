package edge_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// banned lists packages the edge must never link, for any target: server
// dependencies and debugging endpoints.
var banned = []string{
	"github.com/valyala/fasthttp",
	"github.com/redis/go-redis",
	"github.com/tetratelabs/wazero",
	"github.com/prometheus/",
	"net/http/pprof",
	"expvar",
}

// TestDependencyBans lists the dependencies of the edge packages when built
// for the Worker (js/wasm) and the wazero guest (wasip1/wasm) and fails on a
// banned one. The handler and the group committer must also stay free of
// encoding/json (reflection; TinyGo's version has gaps).
func TestDependencyBans(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies (install Go 1.26 and put it on PATH): %v", err)
	}
	for _, target := range []struct {
		goos, goarch string
		pkgs         []string
		alsoBanned   []string
	}{
		{"js", "wasm", []string{"./edge/..."}, nil},
		{"wasip1", "wasm", []string{"./edge", "./edge/commit"}, []string{"encoding/json"}},
		{"js", "wasm", []string{"./edge", "./edge/commit"}, []string{"encoding/json"}},
	} {
		args := append([]string{"list", "-e", "-deps", "-f", "{{.ImportPath}}"}, target.pkgs...)
		cmd := exec.Command(goBin, args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOOS="+target.goos, "GOARCH="+target.goarch, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list for %s/%s: %v", target.goos, target.goarch, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("%s/%s: go list found only %d packages: %q", target.goos, target.goarch, len(deps), out)
		}
		for _, d := range deps {
			for _, b := range append(banned, target.alsoBanned...) {
				if d == b || strings.HasPrefix(d, b+"/") || strings.HasSuffix(b, "/") && strings.HasPrefix(d, b) {
					t.Errorf("%s/%s build of %v links banned package %s", target.goos, target.goarch, target.pkgs, d)
				}
			}
		}
	}
}
