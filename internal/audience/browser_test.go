//go:build linux

package audience

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/edgepoll/edgepoll/internal/browsertest"
	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/shared"
)

func createPoll(t *testing.T, admin *adminclient.Client, p shared.Poll, open bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CreatePoll(ctx, &adminclient.CreateRequest{Poll: p}); err != nil {
		t.Fatalf("create %s: %v", p.ID, err)
	}
	if open {
		if _, err := admin.Open(ctx, p.ID); err != nil {
			t.Fatalf("open %s: %v", p.ID, err)
		}
	}
}

func options(labels ...string) []shared.Option {
	var o []shared.Option
	for _, l := range labels {
		o = append(o, shared.Option{Label: l})
	}
	return o
}

// castVotes has n other voters vote for option 0 over HTTP.
func castVotes(t *testing.T, edge, poll string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		harnesstest.Vote(t, edge, poll, 0)
	}
}

const voted = `document.getElementById("receipt").textContent.length === 32 && !document.getElementById("voted").hidden`

// TestBrowser runs the audience's pages in headless Chromium against the
// harness, an origin and Redis.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium against the stack")
	}
	// The embedding site, on another loopback address, is allowed to frame.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	site := "http://" + ln.Addr().String()
	s := startStack(t, site)
	edge := s.h.URL()
	b := browsertest.Browser(t)

	createPoll(t, s.admin, shared.Poll{ID: "single", Title: "Which song wins?", Options: options("Alpha", "Bravo", "Charlie")}, true)
	createPoll(t, s.admin, shared.Poll{ID: "multi", Title: "Pick two", Kind: shared.KindMulti, MaxChoices: 2, Options: options("Red", "Green", "Blue", "Gold")}, true)

	t.Run("single vote, repeat, reload, check", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/single")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input[type=radio]").length === 3`, 20*time.Second)
		browsertest.Axe(t, ctx, "voting page, open")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, 20*time.Second)
		if got := browsertest.Eval[string](t, ctx, `document.getElementById("voted-choice").textContent`); !strings.Contains(got, "Alpha") {
			t.Errorf("voted choice %q, want Alpha", got)
		}
		browsertest.Axe(t, ctx, "voting page, voted")
		// Reload: the page remembers the vote.
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the vote remembered after a reload", voted+` && document.getElementById("voted-choice").textContent.includes("Alpha")`, 20*time.Second)
		// Check my vote.
		// Check my vote, once every 2 s (the check is rate-limited per voter)
		// until the origin has counted it.
		counted := `document.getElementById("status").textContent.includes("Your vote is counted")`
		for i := 0; i < 10 && !browsertest.Eval[bool](t, ctx, counted); i++ {
			browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("check-vote").click()`)
			time.Sleep(2 * time.Second)
		}
		if !browsertest.Eval[bool](t, ctx, counted) {
			t.Fatalf("check my vote never said counted: %q", browsertest.Eval[string](t, ctx, `document.getElementById("status").textContent`))
		}
		// Forget the vote but keep the voter token: voting again is a 409.
		browsertest.Eval[chromedp.Void](t, ctx, `localStorage.removeItem("edgepoll:vote:single")`)
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form again", `!document.getElementById("vote-form").hidden`, 20*time.Second)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "already voted", `document.getElementById("status").textContent.includes("already voted")`, 20*time.Second)
		browsertest.Shot(t, ctx, "voted", 360)
		browsertest.Shot(t, ctx, "voted", 1280)
	})

	t.Run("multi vote enforces max_choices", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/multi")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the checkboxes", `document.querySelectorAll("#options input[type=checkbox]").length === 4`, 20*time.Second)
		browsertest.Eval[chromedp.Void](t, ctx, `(() => { const b = document.querySelectorAll("#options input[type=checkbox]"); b[0].click(); b[2].click(); })()`)
		if n := browsertest.Eval[int](t, ctx, `[...document.querySelectorAll("#options input[type=checkbox]")].filter(b => !b.checked && !b.disabled).length`); n != 0 {
			t.Errorf("%d unchecked boxes still enabled at max_choices", n)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, 20*time.Second)
		if got := browsertest.Eval[string](t, ctx, `document.getElementById("voted-choice").textContent`); !strings.Contains(got, "Red") || !strings.Contains(got, "Blue") {
			t.Errorf("voted choice %q, want Red and Blue", got)
		}
		browsertest.Axe(t, ctx, "voting page, multi voted")
	})

	t.Run("keyboard only", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/single")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form", `!document.getElementById("vote-form").hidden`, 20*time.Second)
		// Tab to the first option, move to the second with the arrow key,
		// Tab to the button, Enter.
		for i := 0; i < 20 && !browsertest.Eval[bool](t, ctx, `document.activeElement && document.activeElement.type === "radio"`); i++ {
			if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
				t.Fatal(err)
			}
		}
		if !browsertest.Eval[bool](t, ctx, `document.activeElement.type === "radio"`) {
			t.Fatal("Tab never reached an option")
		}
		if out := browsertest.Eval[string](t, ctx, `getComputedStyle(document.activeElement).outlineStyle + " " + getComputedStyle(document.activeElement).boxShadow`); strings.HasPrefix(out, "none none") {
			t.Errorf("the focused option shows no focus ring (%s)", out)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		if id := browsertest.Eval[string](t, ctx, `document.activeElement.id`); id != "vote-submit" {
			t.Fatalf("focus on %q after Tab, want vote-submit", id)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, 20*time.Second)
		if got := browsertest.Eval[string](t, ctx, `document.getElementById("voted-choice").textContent`); !strings.Contains(got, "Bravo") {
			t.Errorf("voted %q by keyboard, want Bravo", got)
		}
	})

	t.Run("live results update", func(t *testing.T) {
		createPoll(t, s.admin, shared.Poll{ID: "live", Title: "Live", Options: options("Yes", "No")}, true)
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/live")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "results shown", `!document.getElementById("results-section").hidden && document.querySelectorAll("#results .bar").length === 2`, 20*time.Second)
		castVotes(t, edge, "live", 5)
		browsertest.WaitJS(t, ctx, "5 voters shown", `document.getElementById("results").dataset.total === "5"`, 20*time.Second)
		if txt := browsertest.Eval[string](t, ctx, `document.getElementById("results").textContent`); !strings.Contains(txt, "100") || !strings.Contains(txt, "5") {
			t.Errorf("results text %q lacks the count and percentage", txt)
		}
		browsertest.Axe(t, ctx, "voting page, live results")
	})

	t.Run("big screen on the stream", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/live/screen")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the screen", `document.getElementById("results").dataset.total === "5" && document.querySelector("svg, canvas, img[src^='data:']") !== null`, 20*time.Second)
		castVotes(t, edge, "live", 2)
		browsertest.WaitJS(t, ctx, "7 voters on the screen", `document.getElementById("results").dataset.total === "7" && document.getElementById("total").textContent.includes("7")`, 20*time.Second)
		if !strings.Contains(browsertest.Eval[string](t, ctx, `document.body.textContent`), "/p/live") {
			t.Error("the screen does not show the voting page's URL")
		}
		browsertest.Axe(t, ctx, "big screen")
		// The viewer's preferences: no animation, and dark colours.
		bg := browsertest.Eval[string](t, ctx, `[document.documentElement, document.body].map(e => getComputedStyle(e).backgroundColor + " " + getComputedStyle(e).color).join(" ")`)
		const moving = `[...document.querySelectorAll("#results *")].filter(e => parseFloat(getComputedStyle(e).transitionDuration) > 0 || getComputedStyle(e).animationName !== "none").length`
		if browsertest.Eval[int](t, ctx, moving) == 0 {
			t.Error("the bars do not animate when motion is allowed")
		}
		media := func(features ...*emulation.MediaFeature) chromedp.Action[chromedp.Void] {
			return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
				return err
			})
		}
		if err := chromedp.Do(ctx, media(&emulation.MediaFeature{Name: "prefers-reduced-motion", Value: "reduce"},
			&emulation.MediaFeature{Name: "prefers-color-scheme", Value: "dark"})); err != nil {
			t.Fatal(err)
		}
		if n := browsertest.Eval[int](t, ctx, moving); n != 0 {
			t.Errorf("%d elements still animate with prefers-reduced-motion: reduce", n)
		}
		if dark := browsertest.Eval[string](t, ctx, `[document.documentElement, document.body].map(e => getComputedStyle(e).backgroundColor + " " + getComputedStyle(e).color).join(" ")`); dark == bg {
			t.Errorf("the background stays %s with prefers-color-scheme: dark", bg)
		}
		browsertest.Axe(t, ctx, "big screen, dark, reduced motion")
		browsertest.Shot(t, ctx, "screen-dark", 1280)
		if err := chromedp.Do(ctx, media()); err != nil {
			t.Fatal(err)
		}
		browsertest.Shot(t, ctx, "screen", 1280)
		browsertest.Shot(t, ctx, "screen", 360)
	})

	t.Run("closed and hidden", func(t *testing.T) {
		createPoll(t, s.admin, shared.Poll{ID: "shut", Title: "Shut", Options: options("A", "B")}, true)
		if _, err := s.admin.Close(context.Background(), "shut", true); err != nil {
			t.Fatal(err)
		}
		createPoll(t, s.admin, shared.Poll{ID: "secret", Title: "Secret", Options: options("A", "B"), Visibility: shared.VisibilityAfterClose}, true)
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/shut")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "closed", `document.documentElement.dataset.phase === "closed" && document.getElementById("vote-form").hidden && /closed/i.test(document.body.innerText)`, 20*time.Second)
		browsertest.Axe(t, ctx, "voting page, closed")
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/secret")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "hidden results", `document.getElementById("results-note").textContent.includes("when voting closes") && document.querySelectorAll("#results .bar").length === 0`, 20*time.Second)
		browsertest.Axe(t, ctx, "voting page, results hidden")
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/secret/screen")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "hidden on the screen", `/when voting closes|hidden/i.test(document.body.innerText)`, 15*time.Second)
		browsertest.Axe(t, ctx, "big screen, results hidden")
	})

	t.Run("countdown opens", func(t *testing.T) {
		createPoll(t, s.admin, shared.Poll{ID: "soon", Title: "Soon", Options: options("A", "B"), OpensAt: time.Now().Add(4 * time.Second)}, true)
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/soon")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "a countdown", `!document.getElementById("countdown").hidden && document.getElementById("countdown").textContent.includes("Opens in") && document.getElementById("vote-form").hidden`, 10*time.Second)
		browsertest.Axe(t, ctx, "voting page, countdown")
		browsertest.WaitJS(t, ctx, "voting open on time", `!document.getElementById("vote-form").hidden && document.getElementById("countdown").hidden`, 20*time.Second)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, 20*time.Second)
	})

	t.Run("xss poll", func(t *testing.T) {
		const title = `<img src=x onerror=alert(1)>`
		createPoll(t, s.admin, shared.Poll{ID: "xss", Title: title, Options: options(`</script><script>alert(2)</script>`, `<b>bold</b>`)}, true)
		ctx := browsertest.Tab(t, b)
		var dialogs atomic.Int32
		chromedp.Listen(ctx, func(ev any) {
			if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
				dialogs.Add(1)
			}
		})
		for _, p := range []string{"/p/xss", "/p/xss/screen"} {
			if err := chromedp.Do(ctx, chromedp.Navigate(edge+p)); err != nil {
				t.Fatal(err)
			}
			browsertest.WaitJS(t, ctx, "the title as text on "+p, `document.body.textContent.includes(`+jsString(title)+`)`, 20*time.Second)
			if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll("img[src=x], main script, b").length`); n != 0 {
				t.Errorf("%s: %d elements made from the poll's text", p, n)
			}
		}
		if p := browsertest.Eval[string](t, ctx, `document.body.textContent`); !strings.Contains(p, "</script>") && !strings.Contains(p, "alert(2)") {
			t.Log("option labels not on the screen page")
		}
		if n := dialogs.Load(); n != 0 {
			t.Errorf("%d script dialogs opened", n)
		}
	})

	t.Run("503 during an origin outage, then success", func(t *testing.T) {
		createPoll(t, s.admin, shared.Poll{ID: "outage", Title: "Outage", Options: options("A", "B")}, true)
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/outage")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form", `!document.getElementById("vote-form").hidden`, 20*time.Second)
		s.o.Stop()
		// The edge's poll config outlives the origin by at most 8 s; then a
		// vote is a 503, which the page retries.
		time.Sleep(shared.MaxConfigAge + time.Second)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "a retry message", `/retry|again|trying/i.test(document.getElementById("status").textContent)`, 20*time.Second)
		if browsertest.Eval[bool](t, ctx, voted) {
			t.Fatal("acknowledged while the origin was down")
		}
		s.o.Restart()
		browsertest.WaitJS(t, ctx, "the receipt after the outage", voted, 30*time.Second)
	})

	t.Run("embed on another site", func(t *testing.T) {
		createPoll(t, s.admin, shared.Poll{ID: "embedded", Title: "Embedded", Options: options("Left", "Right")}, true)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>News</title></head><body><h1>Tonight</h1>
<script src="%s/embed.js" data-poll="embedded" async></script></body></html>`, edge)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the iframe", `document.querySelector("iframe") !== null && document.querySelector("iframe").src.includes("/p/embedded")`, 20*time.Second)
		// The cross-site frame is its own target: attach to it.
		var frame context.Context
		for deadline := time.Now().Add(10 * time.Second); frame == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ts, err := chromedp.Targets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range ts {
				if ti.Type == "iframe" && strings.Contains(ti.URL, "/p/embedded") {
					fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(target.ID(ti.TargetID)))
					t.Cleanup(cancel)
					frame = fctx
				}
			}
		}
		if frame == nil {
			t.Fatal("no iframe target for the embed")
		}
		browsertest.WaitJS(t, frame, "the embedded form", `!document.getElementById("vote-form").hidden`, 20*time.Second)
		if err := chromedp.Do(frame, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, frame, "the receipt in the embed", voted, 20*time.Second)
		browsertest.WaitJS(t, frame, "results in the embed", `!document.getElementById("results-section").hidden && document.getElementById("results").dataset.total === "1"`, 20*time.Second)
		browsertest.WaitJS(t, ctx, "the iframe sized to its content", `document.querySelector("iframe").getBoundingClientRect().height > 200`, 20*time.Second)
		browsertest.Axe(t, frame, "embedded voting page")
		browsertest.Shot(t, ctx, "embed", 360)
	})
	t.Logf("axe: %d pages and states checked, %d serious or critical violations", browsertest.AxeChecked.Load(), browsertest.AxeViolations.Load())
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
