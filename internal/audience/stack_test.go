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
	return startStackWith(t, stackOptions{Allowed: allowed})
}

// stackOptions configure startStackWith.
type stackOptions struct {
	// Allowed is the harness's ALLOWED_ORIGINS.
	Allowed string
	// HarnessEnv is extra harness environment (e.g. JWT_JWKS), after the
	// defaults, so it wins.
	HarnessEnv []string
	// OriginEnv and OriginArgs are the origin's extra environment (e.g.
	// INVITE_KEY; origintest sets one by default) and flags.
	OriginEnv, OriginArgs []string
}

// startStackWith starts the stack with extra configuration.
func startStackWith(t *testing.T, so stackOptions) *stack {
	t.Helper()
	web := builtPages(t)
	rs := redistest.Start(t)
	o := origintest.StartWith(t, rs.URL, origintest.Options{Env: so.OriginEnv, Args: so.OriginArgs})
	env := append([]string{"ALLOWED_ORIGINS=" + so.Allowed}, so.HarnessEnv...)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret),
		Env: env, Args: []string{"-web", web}})
	return &stack{rs: rs, o: o, h: h, admin: adminclient.New(o.URL, o.AdminToken)}
}
