//go:build linux

package audience

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/edgepoll/edgepoll/internal/browsertest"
	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
)

var (
	webOnce sync.Once
	webDir  string
	webErr  string
)

// builtPages builds the pages once per test binary (node scripts/build-web.mjs).
func builtPages(t testing.TB) string {
	t.Helper()
	webOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgepoll-web-")
		if err != nil {
			webErr = err.Error()
			return
		}
		cmd := exec.Command("node", "scripts/build-web.mjs", dir)
		cmd.Dir = browsertest.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			webErr = "node scripts/build-web.mjs (run make deps for esbuild): " + err.Error() + "\n" + string(out)
			return
		}
		webDir = dir
	})
	if webErr != "" {
		t.Fatal(webErr)
	}
	return webDir
}

// stack is Redis, an origin and the harness serving the pages.
type stack struct {
	rs    *redistest.Server
	o     *origintest.Origin
	h     *harnesstest.Harness
	admin *adminclient.Client
}

// startStack starts the stack; allowed is ALLOWED_ORIGINS.
func startStack(t *testing.T, allowed string) *stack {
	t.Helper()
	web := builtPages(t)
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret),
		Env: []string{"ALLOWED_ORIGINS=" + allowed}, Args: []string{"-web", web}})
	return &stack{rs: rs, o: o, h: h, admin: adminclient.New(o.URL, o.AdminToken)}
}
