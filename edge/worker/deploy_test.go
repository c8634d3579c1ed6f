//go:build !js

package worker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWranglerDeployDryRun checks that wrangler.toml is deployable: wrangler
// runs the [build] command (the standard-Go wasm build and our glue), bundles
// the Worker and validates every binding, offline, without uploading.
func TestWranglerDeployDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Worker; run without -short")
	}
	root := repoRoot(t)
	wrangler := filepath.Join(root, "node_modules", ".bin", "wrangler")
	if _, err := os.Stat(wrangler); err != nil {
		t.Fatal("wrangler is not installed: run `make deps` (npm ci)")
	}
	out := t.TempDir()
	cmd := exec.Command(wrangler, "deploy", "--dry-run", "--outdir", out)
	cmd.Dir = root
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false", "WRANGLER_SEND_ERROR_REPORTS=false",
		"CLOUDFLARE_CF_FETCH_ENABLED=false", "CI=1")
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrangler deploy --dry-run: %v\n%s", err, log)
	}
	for _, want := range []string{"VOTES", "edgepoll-votes", "--dry-run: exiting now"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, log)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) == 0 {
		t.Fatalf("dry-run wrote no bundle to %s: %v", out, err)
	}
}
