//go:build !js && linux

package worker_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGlueUnits runs the glue's JavaScript unit tests (edge/worker/glue/
// *.test.mjs) with node's own test runner.
func TestGlueUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: install Node 20 (Debian: apt-get install nodejs), then make deps")
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "edge", "worker", "glue", "*.test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no glue tests found (%v)", err)
	}
	out, err := exec.Command(node, append([]string{"--test"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
