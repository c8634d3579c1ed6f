//go:build !js && linux

package worker_test

import (
	"bufio"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/internal/browsertest"
)

// pagesAndStream checks the audience's side of the Worker in workerd: the
// pages from the ASSETS binding with the same headers as the harness
// (edge/pages.go), the hashed assets with their immutable cache from
// _headers, and the results stream answering an event per new version.
func pagesAndStream(t *testing.T, e *edgeEnv) {
	e.createPoll("pages")
	for _, p := range []string{"/p/pages", "/p/pages/screen"} {
		resp, b, err := e.get(p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": edge.PageCSP([]string{"*"}), // the e2e ALLOWED_ORIGINS
			"Cache-Control":           edge.PageCacheControl,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         edge.ReferrerPolicy,
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q (the glue's copy of edge/pages.go)", p, k, got, v)
			}
		}
		m := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("%s names no script asset:\n%s", p, b)
		}
		ar, _, err := e.get(m[1])
		if err != nil || ar.StatusCode != 200 || ar.Header.Get("Cache-Control") != edge.AssetCacheControl {
			t.Errorf("%s: %v, Cache-Control %q, want %q", m[1], err, ar.Header.Get("Cache-Control"), edge.AssetCacheControl)
		}
	}
	if resp, _, err := e.get("/embed.js"); err != nil || resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != edge.EmbedCacheControl {
		t.Errorf("embed.js: %v %v", resp, err)
	}

	req, _ := http.NewRequest("GET", e.url+"/v1/polls/pages/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// data waits for the next data line, up to d.
	data := func(d time.Duration) string {
		deadline := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if s, ok := strings.CutPrefix(l, "data: "); ok {
					return s
				}
			case <-deadline:
				t.Fatal("no event in time")
			}
		}
	}
	if first := data(20 * time.Second); !strings.Contains(first, `"voters":0`) {
		t.Fatalf("first event %s", first)
	}
	tok, err := e.token("pages")
	if err != nil {
		t.Fatal(err)
	}
	if st, body, err := e.voteRetrying("pages", tok, 1); err != nil || st != http.StatusAccepted {
		t.Fatalf("vote: %d %s %v", st, body, err)
	}
	for {
		if ev := data(30 * time.Second); strings.Contains(ev, `"voters":1`) {
			break
		}
	}
}

// browserVote is the main voting path in Chromium against the Worker: the
// page loads from the ASSETS binding, votes with its Bearer token, shows the
// receipt, and its live results include the vote once the queue consumer
// has delivered it.
func browserVote(t *testing.T, e *edgeEnv) {
	e.createPoll("browser")
	ctx := browsertest.Tab(t, browsertest.Browser(t))
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/p/browser")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, "the form", `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input").length > 1`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, "the receipt", `document.getElementById("receipt").textContent.length === 32`, 20*time.Second)
	browsertest.WaitJS(t, ctx, "the vote in the live results", `document.getElementById("results").dataset.total === "1"`, 40*time.Second)
	browsertest.Axe(t, ctx, "voting page in workerd")
}
