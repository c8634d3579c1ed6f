//go:build linux

package audience

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
)

// root is the repository's root directory.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

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
		cmd.Dir = root()
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

// chromium finds the browser or fails saying how to get it.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run make deps (apt-get install chromium)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	return tctx
}

// artifacts is where screenshots go: $ARTIFACTS_DIR, or the test's temp dir.
func artifacts(t *testing.T) string {
	if d := os.Getenv("ARTIFACTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}
