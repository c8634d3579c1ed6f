//go:build !js && linux

package worker_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
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

// groupCPU sums the CPU time of every process in process group pgid
// (wrangler, its dev proxy and workerd) from /proc.
func groupCPU(t *testing.T, pgid int) time.Duration {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid && pid != pgid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100
	}
	return total
}

// TestStreamCost (make bench-audience) measures what a results stream costs
// the Worker in workerd against conditional polling once a second: CPU of
// wrangler's processes per client-minute, while votes change the results
// twice a second.
func TestStreamCost(t *testing.T) {
	if os.Getenv("AUDIENCE_BENCH") == "" {
		t.Skip("runs with make bench-audience (AUDIENCE_BENCH=1)")
	}
	const clients = 20
	phase := 30 * time.Second
	e := startEdge(t)
	e.createPoll("cost")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the results change twice a second
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if tok, err := e.token("cost"); err == nil {
				e.vote("cost", tok, 0)
			}
		}
	}()
	measure := func(name string, client func(done <-chan struct{})) float64 {
		done := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); client(done) }()
		}
		time.Sleep(2 * time.Second) // connected
		c0, t0 := groupCPU(t, e.pgid), time.Now()
		time.Sleep(phase)
		used, took := groupCPU(t, e.pgid)-c0, time.Since(t0)
		close(done)
		wg.Wait()
		perMin := float64(used.Milliseconds()) / (took.Minutes() * clients)
		t.Logf("%s: %d clients, %v of CPU in %.1f s: %.1f ms per client-minute", name, clients, used, took.Seconds(), perMin)
		return perMin
	}
	idle := measure("votes only", func(done <-chan struct{}) { <-done })
	stream := measure("streams", func(done <-chan struct{}) {
		req, _ := http.NewRequest("GET", e.url+"/v1/polls/cost/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		go func() { <-done; resp.Body.Close() }()
		io.Copy(io.Discard, resp.Body)
	})
	poll := measure("polling", func(done <-chan struct{}) {
		etag := ""
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
			req, _ := http.NewRequest("GET", e.url+"/v1/polls/cost/results", nil)
			if etag != "" {
				req.Header.Set("If-None-Match", etag)
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				if v := resp.Header.Get("ETag"); v != "" {
					etag = v
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	fmt.Printf("stream-cost stream_cpu_ms_per_client_min=%.1f poll_cpu_ms_per_client_min=%.1f clients=%d\n",
		stream-idle, poll-idle, clients)
}
