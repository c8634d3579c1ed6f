//go:build linux

// Package browsertest drives a headless Chromium (Debian's chromium, with
// the launch flags that work offline) for the audience pages' tests: fresh
// profiles and tabs, waiting on page state, axe-core checks and screenshots.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Chromium finds the browser or fails saying how to get it.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run make deps (apt-get install chromium)")
	return ""
}

// Browser starts a headless Chromium with a fresh profile and returns a tab.
func Browser(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t)),
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

// Artifacts is where screenshots go: $ARTIFACTS_DIR, or the test's temp dir.
func Artifacts(t testing.TB) string {
	if d := os.Getenv("ARTIFACTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// Tab opens a page in a fresh browser context (its own storage) of the
// browser b.
func Tab(t testing.TB, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return ctx
}

// WaitJS polls a boolean expression in the page until it holds.
func WaitJS(t testing.TB, ctx context.Context, what, expr string, within time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.documentElement.dataset.phase||"") + " | status: " + (document.getElementById("status")||{}).textContent + " | " + document.body.innerText.slice(0, 600)`))
		t.Fatalf("%s: not within %v (%v); page: %s", what, within, err, state)
	}
}

// Eval evaluates expr in the page.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Axe runs axe-core (node_modules) in the page and fails on serious or
// critical violations; it returns how many there were.
func Axe(t testing.TB, ctx context.Context, where string) int {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(Root(), "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is not installed: run make deps (npm ci): %v", err)
	}
	// DevTools evaluation is not subject to the page's CSP.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
		t.Fatalf("inject axe: %v", err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html).slice(0, 3)})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run: %v", err)
	}
	var vs []struct {
		ID, Impact string
		Nodes      []string
	}
	json.Unmarshal(res, &vs)
	for _, v := range vs {
		t.Errorf("axe on %s: %s (%s) at %v", where, v.ID, v.Impact, v.Nodes)
	}
	AxeChecked.Add(1)
	AxeViolations.Add(int64(len(vs)))
	return len(vs)
}

// AxeChecked and AxeViolations count the pages checked and the serious or
// critical violations found, over the test binary.
var AxeChecked, AxeViolations atomic.Int64

// Shot writes a screenshot at width w.
func Shot(t testing.TB, ctx context.Context, name string, w int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 800), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatalf("viewport %d: %v", w, err)
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(Artifacts(t), fmt.Sprintf("%s-%d.jpg", name, w))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(b))
}
