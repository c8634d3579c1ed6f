// Package deptest proves that the code that runs at the edge (shared/, edge/
// and the wasm guest) builds for every edge target and never links
// server-only packages.
package deptest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// banned are import-path prefixes that must not reach an edge build.
var banned = []string{
	"github.com/valyala/fasthttp",
	"github.com/redis/go-redis",
	"github.com/prometheus/",
	"github.com/tetratelabs/wazero",
	"net/http/pprof",
	"github.com/edgepoll/edgepoll/origin",
	"github.com/edgepoll/edgepoll/wasm/harness",
}

type target struct{ goos, goarch string }

var targets = []target{{"js", "wasm"}, {"wasip1", "wasm"}, {runtime.GOOS, runtime.GOARCH}}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func goCmd(t *testing.T, tg target, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(cmd.Environ(), "GOOS="+tg.goos, "GOARCH="+tg.goarch, "CGO_ENABLED=0")
	return cmd
}

// edgePackages lists the edge-side packages present for a target.
func edgePackages(t *testing.T, tg target) []string {
	t.Helper()
	out, err := goCmd(t, tg, "list", "-e", "-f", "{{if not .Incomplete}}{{.ImportPath}}{{end}}",
		"./shared/...", "./edge/...", "./wasm/guest/...", "./wasm/abi/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "/edgetest") { // test helpers, never linked into a Worker or guest
			continue
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("no edge packages found for %s/%s", tg.goos, tg.goarch)
	}
	return pkgs
}

func TestEdgeBuildsForEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds take a while; run without -short")
	}
	for _, tg := range targets {
		t.Run(tg.goos+"_"+tg.goarch, func(t *testing.T) {
			pkgs := []string{"./shared/..."}
			if tg.goos != "wasip1" {
				pkgs = append(pkgs, "./edge/...")
			}
			args := append([]string{"build", "-o", "/dev/null"}, pkgs...)
			if out, err := goCmd(t, tg, args...).CombinedOutput(); err != nil {
				t.Fatalf("build for %s/%s: %v\n%s", tg.goos, tg.goarch, err, out)
			}
		})
	}
}

func TestNoServerOnlyDependencies(t *testing.T) {
	for _, tg := range targets[:2] {
		t.Run(tg.goos, func(t *testing.T) {
			pkgs := edgePackages(t, tg)
			args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
			out, err := goCmd(t, tg, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 {
				t.Fatalf("suspiciously few deps (%d): %v", len(deps), deps)
			}
			for _, d := range deps {
				for _, b := range banned {
					if strings.HasPrefix(d, b) {
						t.Errorf("%s/%s build of %v pulls in banned package %s", tg.goos, tg.goarch, pkgs, d)
					}
				}
			}
			if !slices.Contains(deps, "github.com/vmihailenco/msgpack/v5") {
				t.Errorf("expected msgpack in the edge graph; the check is not looking at the right packages")
			}
		})
	}
}

// TestBanListCatchesServerPackages makes sure the checker would fail: the
// origin's graph must contain banned packages.
func TestBanListCatchesServerPackages(t *testing.T) {
	out, err := goCmd(t, targets[2], "list", "-deps", "-f", "{{.ImportPath}}", "./origin/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	hits := 0
	for _, d := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(d, b) {
				hits++
			}
		}
	}
	if hits == 0 {
		t.Fatal("origin's dependency graph has no banned package: the ban list is wrong")
	}
}
