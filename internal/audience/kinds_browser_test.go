//go:build linux

package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/edgepoll/edgepoll/internal/browsertest"
	"github.com/edgepoll/edgepoll/internal/harnesstest"
)

// createKindPoll creates (and opens) a poll from its admin JSON, so these
// tests say the poll exactly as docs/API.md does.
func createKindPoll(t *testing.T, s *stack, poll string) {
	t.Helper()
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(poll), &p); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.o.URL+"/v1/admin/polls", strings.NewReader(poll))
	req.Header.Set("Authorization", "Bearer "+s.o.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	msg.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d %s", p.ID, resp.StatusCode, msg.String())
	}
	if _, err := s.admin.Open(context.Background(), p.ID); err != nil {
		t.Fatalf("open %s: %v", p.ID, err)
	}
}

// mustVote is voteBody that fails unless the edge answers 202.
func mustVote(t *testing.T, edge, poll, body string) {
	t.Helper()
	if st, msg := harnesstest.VoteBody(t, edge, poll, body); st != 202 {
		t.Fatalf("vote %s in %s: %d %s, want 202", body, poll, st, msg)
	}
}

// tabTo presses Tab until expr (about document.activeElement) holds.
func tabTo(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	for i := 0; i < 30 && !browsertest.Eval[bool](t, ctx, expr); i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
	}
	if !browsertest.Eval[bool](t, ctx, expr) {
		t.Fatalf("Tab never reached %s (focus on %s)", what, browsertest.Eval[string](t, ctx, `document.activeElement.outerHTML.slice(0, 200)`))
	}
}

// keys presses each key in turn.
func keys(t *testing.T, ctx context.Context, ks ...string) {
	t.Helper()
	for _, k := range ks {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(k)); err != nil {
			t.Fatal(err)
		}
	}
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `document.getElementById(`+jsString(id)+`).textContent`)
}

// darkAxe runs axe again with prefers-color-scheme: dark, then restores
// the page's media.
func darkAxe(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	media := func(features ...*emulation.MediaFeature) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
			return err
		})
	}
	if err := chromedp.Do(ctx, media(&emulation.MediaFeature{Name: "prefers-color-scheme", Value: "dark"})); err != nil {
		t.Fatal(err)
	}
	browsertest.Axe(t, ctx, where+", dark")
	if err := chromedp.Do(ctx, media()); err != nil {
		t.Fatal(err)
	}
}

// touchDrag drags a finger from the centre of the element from to the
// centre of to (CSS selectors), in ten moves, with touch emulation on.
func touchDrag(t *testing.T, ctx context.Context, from, to string) {
	t.Helper()
	center := func(sel string) (float64, float64) {
		xy := browsertest.Eval[[]float64](t, ctx, `(() => { const r = document.querySelector(`+jsString(sel)+`).getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
		return xy[0], xy[1]
	}
	fx, fy := center(from)
	tx, ty := center(to)
	one := 1.0
	point := func(x, y float64) []*input.TouchPoint {
		return []*input.TouchPoint{{X: x, Y: y, RadiusX: &one, RadiusY: &one, Force: &one}}
	}
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 1}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchStart, TouchPoints: point(fx, fy)}); err != nil {
			return err
		}
		for i := 1; i <= 10; i++ {
			x, y := fx+(tx-fx)*float64(i)/10, fy+(ty-fy)*float64(i)/10
			if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchMove, TouchPoints: point(x, y)}); err != nil {
				return err
			}
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{}})
		return err
	}))
	if err != nil {
		t.Fatalf("touch drag: %v", err)
	}
}

const focusRingShown = `(() => { const e = document.activeElement, l = e.labels && e.labels[0];
	return [e, l].filter(Boolean).some(x => { const s = getComputedStyle(x); return s.outlineStyle !== "none" || s.boxShadow !== "none"; }); })()`

// TestBrowserKinds runs the voting page, the big screen and the embed for
// scale, ranked and words polls in headless Chromium against the harness,
// an origin and Redis: each voted by keyboard and by pointer, results
// drawn from live data, axe-core on each state, and a refused word showing
// the edge's own message.
func TestBrowserKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium against the stack")
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	site := "http://" + ln.Addr().String()
	s := startStack(t, site)
	edge := s.h.URL()
	b := browsertest.Browser(t)

	createKindPoll(t, s, `{"id":"mood","title":"How was the show?","kind":"scale","scale":{"min":1,"max":10,"min_label":"awful","max_label":"brilliant"}}`)
	createKindPoll(t, s, `{"id":"temp","title":"How warm is it?","kind":"scale","scale":{"min":-50,"max":50,"min_label":"freezing","max_label":"boiling"}}`)
	createKindPoll(t, s, `{"id":"acts","title":"Rank the acts","kind":"ranked","max_choices":3,"options":[{"label":"Ann"},{"label":"Bob"},{"label":"Cy"},{"label":"Di"}]}`)
	createKindPoll(t, s, `{"id":"oneword","title":"The show in a word or two","kind":"words","max_words":2}`)

	// --- scale -------------------------------------------------------------

	t.Run("scale buttons by keyboard", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/mood")
		browsertest.WaitJS(t, ctx, "ten number buttons", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input[type=radio]").length === 10`, within)
		if got := text(t, ctx, "options"); !strings.Contains(got, "awful") || !strings.Contains(got, "brilliant") {
			t.Errorf("the scale's end words are not shown: %q", got)
		}
		browsertest.Axe(t, ctx, "scale poll, open")
		tabTo(t, ctx, "a number", `document.activeElement.type === "radio"`)
		if !browsertest.Eval[bool](t, ctx, focusRingShown) {
			t.Error("the focused number shows no focus ring")
		}
		// From 1, six steps right is 7.
		keys(t, ctx, kb.ArrowRight, kb.ArrowRight, kb.ArrowRight, kb.ArrowRight, kb.ArrowRight, kb.ArrowRight)
		if v := browsertest.Eval[string](t, ctx, `document.querySelector("#options input:checked").value`); v != "7" {
			t.Fatalf("checked %q after six arrows, want 7", v)
		}
		tabTo(t, ctx, "the Vote button", `document.activeElement.id === "vote-submit"`)
		keys(t, ctx, "\r")
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); !strings.Contains(got, "7") {
			t.Errorf("voted %q, want 7", got)
		}
		browsertest.WaitJS(t, ctx, "the histogram with the mean", `document.querySelectorAll("#results .col").length === 10 && document.querySelector("#results .stats").dataset.mean === "7.00"`, within)
		browsertest.Axe(t, ctx, "scale poll, voted, results")
	})

	t.Run("scale buttons by pointer", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/mood")
		browsertest.WaitJS(t, ctx, "the number buttons", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input[type=radio]").length === 10`, within)
		// Vote with nothing chosen: the error summary says so.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the error summary", `!document.getElementById("error-summary").hidden && document.activeElement.id === "error-summary" && document.getElementById("error-link").textContent.includes("Choose a number")`, within)
		browsertest.Axe(t, ctx, "scale poll, nothing chosen")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label[for="opt-2"]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); !strings.Contains(got, "3") {
			t.Errorf("voted %q, want 3", got)
		}
		browsertest.WaitJS(t, ctx, "two voters, mean 5.00", `document.getElementById("results").dataset.total === "2" && document.querySelector("#results .stats").dataset.mean === "5.00" && document.querySelector('#results .col[data-value="3"]').dataset.count === "1"`, within)
		browsertest.Shot(t, ctx, "scale-voted", 360)
	})

	t.Run("scale slider", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/temp")
		browsertest.WaitJS(t, ctx, "a slider", `!document.getElementById("vote-form").hidden && document.querySelector("#options input[type=range]") !== null && document.querySelectorAll("#options input[type=radio]").length === 0`, within)
		browsertest.Axe(t, ctx, "scale poll with a slider")
		// An untouched slider is no answer.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the error summary", `!document.getElementById("error-summary").hidden && document.getElementById("error-link").textContent.includes("slider")`, within)
		tabTo(t, ctx, "the slider", `document.activeElement.type === "range"`)
		keys(t, ctx, kb.End, kb.ArrowLeft, kb.ArrowLeft, kb.ArrowLeft, kb.ArrowLeft, kb.ArrowLeft)
		if got := text(t, ctx, "scale-value"); got != "45" {
			t.Fatalf("the slider shows %q, want 45", got)
		}
		// The − button steps down by one, by pointer.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.nudge[aria-label="One less"]`))); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "scale-value"); got != "44" {
			t.Fatalf("the slider shows %q after −, want 44", got)
		}
		tabTo(t, ctx, "the Vote button", `document.activeElement.id === "vote-submit"`)
		keys(t, ctx, "\r")
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); !strings.Contains(got, "44") {
			t.Errorf("voted %q, want 44", got)
		}
		browsertest.WaitJS(t, ctx, "101 columns, mean 44.00", `document.querySelectorAll("#results .col").length === 101 && document.querySelector("#results .stats").dataset.mean === "44.00"`, within)
		browsertest.Axe(t, ctx, "scale poll with a slider, voted")
	})

	t.Run("big screen histogram", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/mood/screen")
		browsertest.WaitJS(t, ctx, "the histogram", `document.querySelectorAll("#results .col").length === 10 && document.getElementById("results").dataset.total === "2"`, within)
		for _, v := range []int{10, 10, 9} {
			mustVote(t, edge, "mood", `{"value":`+strconv.Itoa(v)+`}`)
		}
		// 7, 3, 10, 10, 9: mean 7.80, 10 the tallest column.
		browsertest.WaitJS(t, ctx, "five voters, mean 7.80", `document.getElementById("results").dataset.total === "5" && document.getElementById("total").textContent === "5" &&
			document.querySelector("#results .stats").textContent.includes("7.80") && document.querySelector('#results .col[data-value="10"]').classList.contains("lead") &&
			!document.querySelector("#results .mean-mark").hidden`, within)
		// Column 10 (two votes) grows to twice column 9 (one), once the
		// transitions end.
		browsertest.WaitJS(t, ctx, "column 10 twice column 9", `(() => { const h = (v) => document.querySelector('#results .col[data-value="' + v + '"] .col-bar').getBoundingClientRect().height;
			return h(9) > 0 && Math.abs(h(10) / h(9) - 2) < 0.05; })()`, within)
		browsertest.Axe(t, ctx, "big screen, scale")
		darkAxe(t, ctx, "big screen, scale")
		browsertest.Shot(t, ctx, "screen-scale", 1280)
	})

	// --- ranked ------------------------------------------------------------

	const ranking = `[...document.querySelectorAll("#ranking li")].map(li => li.querySelector(".label").textContent).join(",")`
	t.Run("ranked by keyboard", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/acts")
		browsertest.WaitJS(t, ctx, "the options to rank", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#pool .pick").length === 4`, within)
		browsertest.Axe(t, ctx, "ranked poll, open")
		tabTo(t, ctx, "the first option", `document.activeElement.classList.contains("pick")`)
		if !browsertest.Eval[bool](t, ctx, focusRingShown) {
			t.Error("the focused option shows no focus ring")
		}
		// Enter ranks the focused option; focus moves to the next one.
		keys(t, ctx, "\r", "\r", "\r")
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Ann,Bob,Cy" {
			t.Fatalf("ranking %q, want Ann,Bob,Cy", got)
		}
		if !strings.Contains(text(t, ctx, "rank-live"), "complete") {
			t.Errorf("no word that the ranking is complete: %q", text(t, ctx, "rank-live"))
		}
		if d := browsertest.Eval[string](t, ctx, `document.querySelector("#pool .pick").getAttribute("aria-disabled")`); d != "true" {
			t.Errorf("the fourth option is not marked unavailable at max_choices (aria-disabled %q)", d)
		}
		// Focus is on Cy's Move up; Alt+ArrowUp moves Cy up, then the button does.
		if got := browsertest.Eval[string](t, ctx, `document.activeElement.getAttribute("aria-label")`); got != "Move Cy up" {
			t.Fatalf("focus on %q after the ranking filled, want Move Cy up", got)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.ArrowUp, chromedp.KeyModifiers(chromedp.ModifierAlt))); err != nil {
			t.Fatal(err)
		}
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Ann,Cy,Bob" {
			t.Fatalf("ranking %q after Alt+ArrowUp, want Ann,Cy,Bob", got)
		}
		if got := text(t, ctx, "rank-live"); got != "Cy moved to position 2 of 3." {
			t.Errorf("announced %q", got)
		}
		keys(t, ctx, "\r")
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Cy,Ann,Bob" {
			t.Fatalf("ranking %q after Move up, want Cy,Ann,Bob", got)
		}
		if got := browsertest.Eval[string](t, ctx, `document.activeElement.getAttribute("aria-label")`); got != "Move Cy up" {
			t.Errorf("focus on %q after moving, want it kept on Move Cy up", got)
		}
		browsertest.Axe(t, ctx, "ranked poll, ranking complete")
		darkAxe(t, ctx, "ranked poll, ranking complete")
		browsertest.Shot(t, ctx, "ranked-form", 360)
		tabTo(t, ctx, "the Vote button", `document.activeElement.id === "vote-submit"`)
		keys(t, ctx, "\r")
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); got != "Your ranking: 1. Cy, 2. Ann, 3. Bob." {
			t.Errorf("voted %q", got)
		}
		// Borda, n = 4: Cy 3, Ann 2, Bob 1, Di 0.
		browsertest.WaitJS(t, ctx, "bars by points", `(() => { const r = [...document.querySelectorAll("#results .bar")];
			return r.length === 4 && r.map(li => li.querySelector(".label").textContent + li.dataset.points).join(",") === "Cy3,Ann2,Bob1,Di0"; })()`, within)
		browsertest.Axe(t, ctx, "ranked poll, voted, results")
	})

	t.Run("ranked by pointer", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/acts")
		browsertest.WaitJS(t, ctx, "the options to rank", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#pool .pick").length === 4`, within)
		for _, o := range []string{"1", "3", "0"} { // Bob, Di, Ann
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#pool .pick[data-option="`+o+`"]`))); err != nil {
				t.Fatal(err)
			}
		}
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Bob,Di,Ann" {
			t.Fatalf("ranking %q, want Bob,Di,Ann", got)
		}
		// Drag Ann by her grip onto Bob, at the top.
		if err := chromedp.Do(ctx, chromedp.DragAndDrop(chromedp.CSS(`#ranking li[data-option="0"] .grip`), chromedp.CSS(`#ranking li[data-option="1"] .grip`))); err != nil {
			t.Fatal(err)
		}
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Ann,Bob,Di" {
			t.Fatalf("ranking %q after the drag, want Ann,Bob,Di", got)
		}
		if got := text(t, ctx, "rank-live"); got != "Ann moved to position 1 of 3." {
			t.Errorf("announced %q after the drag", got)
		}
		// Remove Di by pointer, then vote.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ranking li[data-option="3"] .remove`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); got != "Your ranking: 1. Ann, 2. Bob." {
			t.Errorf("voted %q", got)
		}
		browsertest.Shot(t, ctx, "ranked-voted", 360)
	})

	t.Run("ranked by touch", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 800)); err != nil {
			t.Fatal(err)
		}
		navigate(t, ctx, edge+"/p/acts")
		browsertest.WaitJS(t, ctx, "the options to rank", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#pool .pick").length === 4`, within)
		browsertest.Eval[chromedp.Void](t, ctx, `document.querySelectorAll("#pool .pick").forEach((b, i) => i < 3 && b.click())`)
		browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("ranking").scrollIntoView({block: "center"})`)
		if got := browsertest.Eval[string](t, ctx, ranking); got != "Ann,Bob,Cy" {
			t.Fatalf("ranking %q, want Ann,Bob,Cy", got)
		}
		// A finger on Cy's grip, dragged up to Ann's: Cy first. (No vote:
		// the screen's figures below count two ballots.)
		browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("ranking").addEventListener("pointerdown", (e) => { window.pointerSeen = e.pointerType; })`)
		touchDrag(t, ctx, `#ranking li[data-option="2"] .grip`, `#ranking li[data-option="0"] .grip`)
		browsertest.WaitJS(t, ctx, "Cy first after the touch drag", ranking+` === "Cy,Ann,Bob"`, within)
		if pt := browsertest.Eval[string](t, ctx, `window.pointerSeen || ""`); pt != "touch" {
			t.Errorf("the drag came as a %q pointer, want touch", pt)
		}
		if got := text(t, ctx, "rank-live"); got != "Cy moved to position 1 of 3." {
			t.Errorf("announced %q after the touch drag", got)
		}
	})

	t.Run("big screen ranked bars", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/acts/screen")
		// Cy,Ann,Bob and Ann,Bob: Ann 5, Bob 3, Cy 3 (and one first choice), Di 0.
		browsertest.WaitJS(t, ctx, "the bars", `document.querySelectorAll("#results .bar").length === 4 && document.getElementById("results").dataset.total === "2"`, within)
		mustVote(t, edge, "acts", `{"choices":[3]}`)
		mustVote(t, edge, "acts", `{"choices":[3,2]}`)
		// Di 6 with two first choices leads.
		browsertest.WaitJS(t, ctx, "Di first with 6 points", `(() => { const r = [...document.querySelectorAll("#results .bar")];
			return document.getElementById("results").dataset.total === "4" && r.map(li => li.querySelector(".label").textContent + li.dataset.points + "/" + li.dataset.first).join(",") === "Di6/2,Ann5/1,Cy5/1,Bob3/0"; })()`, within)
		if got := browsertest.Eval[string](t, ctx, `document.querySelector("#results .bar").textContent`); !strings.Contains(got, "6 points") || !strings.Contains(got, "2 first choices") {
			t.Errorf("the leading bar reads %q", got)
		}
		browsertest.Axe(t, ctx, "big screen, ranked")
		browsertest.Shot(t, ctx, "screen-ranked", 1280)
	})

	// --- words -------------------------------------------------------------

	t.Run("words by keyboard, a refused word", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/oneword")
		browsertest.WaitJS(t, ctx, "two word fields", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input.word").length === 2`, within)
		browsertest.Axe(t, ctx, "words poll, open")
		tabTo(t, ctx, "the first word field", `document.activeElement.id === "word-0"`)
		keys(t, ctx, "no way!")
		if got := text(t, ctx, "word-note-0"); !strings.Contains(got, "no spaces") {
			t.Errorf("no live warning for a word with a space: %q", got)
		}
		// The page still sends it (the edge decides) and shows the edge's message.
		_, want := harnesstest.VoteBody(t, edge, "oneword", `{"words":["no way!"]}`)
		if want == "" {
			t.Fatal("the edge gave no message for a refused word")
		}
		keys(t, ctx, "\r")
		browsertest.WaitJS(t, ctx, "the edge's message", `(() => { const s = document.getElementById("error-summary"), e = document.getElementById("word-error-0"), i = document.getElementById("word-0");
			const want = `+jsString(strings.ToLower(want))+`;
			return !s.hidden && s.textContent.toLowerCase().includes(want) && !e.hidden && e.textContent.toLowerCase().includes(want) && i.getAttribute("aria-invalid") === "true"; })()`, within)
		if browsertest.Eval[bool](t, ctx, voted) {
			t.Fatal("a refused word shows as a vote")
		}
		browsertest.Axe(t, ctx, "words poll, word refused")
		darkAxe(t, ctx, "words poll, word refused")
		browsertest.Shot(t, ctx, "words-refused", 360)
		// Fix it by keyboard: back to the field, erase, type, next field, Enter.
		browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("word-0").focus()`)
		for i := 0; i < len("no way!"); i++ {
			keys(t, ctx, kb.Backspace)
		}
		keys(t, ctx, "Amazing")
		if got := text(t, ctx, "word-note-0"); got != "Counted as “amazing”." {
			t.Errorf("live note %q, want it counted as amazing", got)
		}
		keys(t, ctx, "\t", "Fun", "\r")
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		if got := text(t, ctx, "voted-choice"); !strings.Contains(got, "amazing") || !strings.Contains(got, "fun") {
			t.Errorf("voted %q, want amazing and fun", got)
		}
		browsertest.WaitJS(t, ctx, "the cloud", `document.querySelector('#results .word[data-word="amazing"]') !== null && document.querySelector('#results .word[data-word="fun"]') !== null`, within)
		browsertest.Axe(t, ctx, "words poll, voted, cloud")
	})

	t.Run("words by pointer", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/oneword")
		browsertest.WaitJS(t, ctx, "the word fields", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input.word").length === 2`, within)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the error summary", `!document.getElementById("error-summary").hidden && document.getElementById("error-link").textContent.includes("Enter at least one word")`, within)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("word-0")), chromedp.KeyEvent("AMAZING"), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
	})

	t.Run("big screen word cloud", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, edge+"/p/oneword/screen")
		browsertest.WaitJS(t, ctx, "the cloud", `document.querySelector('#results .word[data-word="amazing"]') !== null`, within)
		for _, w := range []string{`["amazing"]`, `["Brilliant","loud"]`, `["brilliant"]`, `["ＬＯＵＤ"]`} {
			mustVote(t, edge, "oneword", `{"words":`+w+`}`)
		}
		// amazing 3, brilliant 2, loud 2, fun 1.
		browsertest.WaitJS(t, ctx, "the words counted", `(() => { const c = (w) => (document.querySelector('#results .word[data-word="' + w + '"]') || {dataset: {}}).dataset.count;
			return document.getElementById("results").dataset.total === "6" && c("amazing") === "3" && c("brilliant") === "2" && c("loud") === "2" && c("fun") === "1"; })()`, within)
		size := func(w string) float64 {
			return browsertest.Eval[float64](t, ctx, `parseFloat(getComputedStyle(document.querySelector('#results .word[data-word="`+w+`"]')).fontSize)`)
		}
		if a, f := size("amazing"), size("fun"); a <= f*1.3 {
			t.Errorf("amazing (3) is %.0f px, fun (1) %.0f px: the cloud does not size by count", a, f)
		}
		if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll("#results script, #results img, #results b").length`); n != 0 {
			t.Errorf("%d elements in the cloud beyond text", n)
		}
		browsertest.Axe(t, ctx, "big screen, words")
		darkAxe(t, ctx, "big screen, words")
		browsertest.Shot(t, ctx, "screen-words", 1280)
		browsertest.Shot(t, ctx, "screen-words", 360)
	})

	// --- embed -------------------------------------------------------------

	t.Run("embed of a scale poll", func(t *testing.T) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>News</title></head><body><h1>Tonight</h1>
<script src="%s/embed.js" data-poll="mood" data-title="Rate the show" async></script></body></html>`, edge)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ctx := browsertest.Tab(t, b)
		navigate(t, ctx, site+"/")
		frame := attachFrame(t, ctx, "/p/mood")
		browsertest.WaitJS(t, frame, "the embedded histogram", `document.querySelectorAll("#results .col").length === 10 && document.getElementById("results").dataset.total === "5"`, within)
		if err := chromedp.Do(frame, chromedp.Click(chromedp.CSS(`label[for="opt-7"]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, frame, "the receipt in the embed", voted, within)
		browsertest.WaitJS(t, frame, "six voters in the embed", `document.getElementById("results").dataset.total === "6"`, within)
		browsertest.WaitJS(t, ctx, "the iframe sized to its content", `document.querySelector("iframe").getBoundingClientRect().height > 300`, within)
		browsertest.Axe(t, frame, "embedded scale poll")
	})
	t.Logf("axe: %d pages and states checked, %d serious or critical violations", browsertest.AxeChecked.Load(), browsertest.AxeViolations.Load())
}
