//go:build !js && linux

package worker_test

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/internal/closetest"
	"github.com/edgepoll/edgepoll/internal/kindstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/internal/tinygotest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

// The end-to-end tests run the real Worker (this package's glue and host,
// edge.New, edge/commit) in workerd under `wrangler dev`, offline on
// loopback, with the real origin binary and a real redis-server behind it.

const e2eTokenSecret = "e2e-token-secret-0123456789abcdef0123456789"

// repoRoot is the module root (two levels above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// edgeEnv is one running stack: redis, origin, wrangler dev serving the Worker.
type edgeEnv struct {
	t      *testing.T
	origin *origintest.Origin
	url    string // the Worker
	logs   *syncbuf.Buffer
	pgid   int // wrangler's process group: the dev proxy and workerd
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startEdge(t *testing.T) *edgeEnv { return startEdgeWith(t, "") }

// startEdgeWith starts the stack with extra appended to the Worker's wrangler.toml.
func startEdgeWith(t *testing.T, extra string) *edgeEnv { return startEdgeVars(t, "", extra) }

// startEdgeVars starts the stack with vars (TOML lines) added to the
// Worker's [vars] and extra appended to its wrangler.toml.
func startEdgeVars(t *testing.T, vars, extra string) *edgeEnv {
	t.Helper()
	return startEdgeOpts(t, edgeOptions{vars: vars, extra: extra})
}

// Toolchains the Worker is built with (scripts/build-edge.sh's mode).
const (
	toolchainGo     = "go"
	toolchainTinyGo = "tinygo"
)

// toolchains lists the toolchains the Worker's end-to-end tests run with:
// standard Go always, TinyGo too (skipped, saying why and how to get it,
// when no tinygo 0.41+ is on PATH).
var toolchains = []string{toolchainGo, toolchainTinyGo}

// edgeOptions vary startEdgeOpts's stack.
type edgeOptions struct {
	toolchain string // build-edge.sh mode: toolchainGo (default) or toolchainTinyGo
	tags      string // EDGE_TAGS: extra Go build tags
	vars      string // TOML lines added to [vars]
	extra     string // appended to wrangler.toml
}

// startEdgeOpts starts the stack as o says.
func startEdgeOpts(t *testing.T, o edgeOptions) *edgeEnv {
	t.Helper()
	if o.toolchain == "" {
		o.toolchain = toolchainGo
	}
	if o.toolchain == toolchainTinyGo {
		tinygotest.Require(t)
	}
	vars, extra := o.vars, o.extra
	root := repoRoot(t)
	wrangler := filepath.Join(root, "node_modules", ".bin", "wrangler")
	if _, err := os.Stat(wrangler); err != nil {
		t.Fatalf("wrangler not installed at %s: run make deps (npm ci)", wrangler)
	}
	dir := t.TempDir()
	build := exec.Command("bash", filepath.Join(root, "scripts", "build-edge.sh"), o.toolchain, filepath.Join(dir, "edge"))
	build.Dir = root
	build.Env = append(os.Environ(), "WEB_OUT="+filepath.Join(dir, "web"), "EDGE_TAGS="+o.tags)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-edge.sh: %v\n%s", err, out)
	}

	redis := redistest.Start(t)
	orig := origintest.Start(t, redis.URL)

	config := fmt.Sprintf(`name = "edgepoll-e2e"
main = %q
compatibility_date = "2025-06-01"
[[rules]]
type = "CompiledWasm"
globs = ["**/*.wasm"]
fallthrough = false
[vars]
ORIGIN_URL = %q
EDGE_ID = "e2e"
ALLOWED_ORIGINS = "*"
TOKEN_SECRET = %q
INGEST_KEY = %q
RATE_IP_VOTES = "off"
RATE_IP_TOKENS = "off"
COOKIE_SECURE = "false"
%s
[[queues.producers]]
binding = "VOTES"
queue = "edgepoll-votes"
[[queues.consumers]]
queue = "edgepoll-votes"
max_batch_size = 10
max_batch_timeout = 1
max_retries = 20
dead_letter_queue = "edgepoll-votes-dlq"
[assets]
directory = %q
binding = "ASSETS"
html_handling = "none"
not_found_handling = "none"
`, filepath.Join(dir, "edge", "worker.mjs"), orig.URL, e2eTokenSecret, orig.IngestKey.ID+"="+string(orig.IngestKey.Secret), vars, filepath.Join(dir, "web")) + extra
	if err := os.WriteFile(filepath.Join(dir, "wrangler.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(wrangler, "dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port),
		"--inspector-port", fmt.Sprint(freePort(t)), "--show-interactive-dev-session=false")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false", "WRANGLER_SEND_ERROR_REPORTS=false",
		"CLOUDFLARE_CF_FETCH_ENABLED=false", "CI=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &syncbuf.Buffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("wrangler dev: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if strings.Contains(sc.Text(), "Ready on") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			out := logs.String()
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("wrangler dev log tail:\n%s", out)
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("wrangler dev exited before Ready:\n%s", logs.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("wrangler dev not ready after 90s:\n%s", logs.String())
	}
	return &edgeEnv{t: t, origin: orig, url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: logs, pgid: cmd.Process.Pid}
}

var client = &http.Client{Timeout: 30 * time.Second}

func (e *edgeEnv) admin(method, path, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.origin.URL+"/v1/admin/"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.origin.AdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *edgeEnv) createPoll(id string) {
	e.t.Helper()
	if st, b := e.admin("POST", "polls", fmt.Sprintf(`{"id":%q,"title":"E2E","options":[{"label":"A"},{"label":"B"},{"label":"C"}],"kind":"single","state":"draft","visibility":"live"}`, id)); st/100 != 2 {
		e.t.Fatalf("create poll: %d %s", st, b)
	}
	if st, b := e.admin("POST", "polls/"+id+"/open", ""); st/100 != 2 {
		e.t.Fatalf("open poll: %d %s", st, b)
	}
}

// counted returns the origin's exact counts for a poll (uncached admin read).
func (e *edgeEnv) counted(id string) (counts []int64, total, voters int64) {
	e.t.Helper()
	st, b := e.admin("GET", "polls/"+id+"/results", "")
	if st != 200 {
		e.t.Fatalf("admin results: %d %s", st, b)
	}
	var r struct {
		Counts []int64 `json:"counts"`
		Total  int64   `json:"total"`
		Voters int64   `json:"voters"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("admin results %s: %v", b, err)
	}
	return r.Counts, r.Total, r.Voters
}

// waitCounted waits until the origin has counted want voters for poll.
func (e *edgeEnv) waitCounted(id string, want int64, within time.Duration) []int64 {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		counts, _, voters := e.counted(id)
		if voters == want {
			return counts
		}
		if voters > want || time.Now().After(deadline) {
			e.t.Fatalf("poll %s: origin counted %d voters, want %d (counts %v)", id, voters, want, counts)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (e *edgeEnv) get(path string) (*http.Response, []byte, error) {
	resp, err := client.Get(e.url + path)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// token fetches a voter token for poll through the Worker.
func (e *edgeEnv) token(poll string) (string, error) {
	resp, b, err := e.get("/v1/polls/" + poll)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET poll: %d %s", resp.StatusCode, b)
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Token == "" {
		return "", fmt.Errorf("GET poll: no token in %s", b)
	}
	return r.Token, nil
}

// voteRetrying votes like a well-behaved client: a 503 means "not recorded,
// retry", so it retries a few times. It returns the final status.
func (e *edgeEnv) voteRetrying(poll, tok string, choice int) (int, string, error) {
	for attempt := 0; ; attempt++ {
		st, body, err := e.vote(poll, tok, choice)
		if err != nil || st != http.StatusServiceUnavailable || attempt == 4 {
			return st, body, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// vote posts a vote through the Worker and returns the status.
func (e *edgeEnv) vote(poll, tok string, choice int) (int, string, error) {
	resp, err := client.Post(e.url+"/v1/polls/"+poll+"/votes", "application/json",
		strings.NewReader(fmt.Sprintf(`{"token":%q,"choice":%d}`, tok, choice)))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// It runs once per toolchain the Worker is built with.
func TestWorkerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) { workerEndToEnd(t, tc) })
	}
}

func workerEndToEnd(t *testing.T, toolchain string) {
	e := startEdgeOpts(t, edgeOptions{toolchain: toolchain})

	t.Run("ErrorsAndCORS", func(t *testing.T) {
		e.t = t
		errorsAndCORS(t, e)
	})

	t.Run("OneOriginLoadPerPeriod", func(t *testing.T) {
		e.t = t
		oneOriginLoadPerPeriod(t, e)
	})

	t.Run("PagesAndStream", func(t *testing.T) {
		e.t = t
		pagesAndStream(t, e)
	})

	t.Run("BrowserVote", func(t *testing.T) {
		e.t = t
		browserVote(t, e)
	})

	t.Run("SustainedVoting", func(t *testing.T) {
		e.t = t
		sustainedVoting(t, e)
	})

	t.Run("VoteRepeatResultsCache", func(t *testing.T) {
		e.t = t
		e.createPoll("solo")
		tok, err := e.token("solo")
		if err != nil {
			t.Fatal(err)
		}
		if st, body, err := e.vote("solo", tok, 1); err != nil || st != http.StatusAccepted {
			t.Fatalf("first vote: %d %s %v, want 202", st, body, err)
		}
		if st, body, err := e.vote("solo", tok, 2); err != nil || st != http.StatusConflict {
			t.Fatalf("repeat vote: %d %s %v, want 409", st, body, err)
		}
		// The queue consumer delivers the batch; the edge's results show it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, b, err := e.get("/v1/polls/solo/results")
			if err == nil && resp.StatusCode == 200 {
				var r struct {
					Counts []int64 `json:"counts"`
					Total  int64   `json:"total"`
				}
				if json.Unmarshal(b, &r) == nil && r.Total == 1 {
					if len(r.Counts) != 3 || r.Counts[1] != 1 {
						t.Fatalf("results %s: want the vote on option 1", b)
					}
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("results never showed the vote: last %v %s", err, b)
			}
			time.Sleep(300 * time.Millisecond)
		}
		// A read right after a read is served from the edge cache.
		first, _, err := e.get("/v1/polls/solo/results")
		if err != nil {
			t.Fatal(err)
		}
		second, b, err := e.get("/v1/polls/solo/results")
		if err != nil {
			t.Fatal(err)
		}
		if got := second.Header.Get("X-Edgepoll-Cache"); got != "hit" {
			t.Fatalf("second results read: X-Edgepoll-Cache %q (first %q), want hit; body %s",
				got, first.Header.Get("X-Edgepoll-Cache"), b)
		}
		if second.Header.Get("ETag") == "" || !strings.Contains(second.Header.Get("Cache-Control"), "max-age") {
			t.Fatalf("results lost the origin's validators: %v", second.Header)
		}
		req, _ := http.NewRequest("GET", e.url+"/v1/polls/solo/results", nil)
		req.Header.Set("If-None-Match", second.Header.Get("ETag"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
		}
	})

	t.Run("NewKindsVotedAndCounted", func(t *testing.T) {
		e.t = t
		kindstest.Run(t, e.url, e.admin, e.get)
	})

	t.Run("ConcurrentVotersExact", func(t *testing.T) {
		e.t = t
		e.createPoll("crowd")
		const voters = 300
		toks := make([]string, voters)
		for i := range toks {
			var err error
			if toks[i], err = e.token("crowd"); err != nil {
				t.Fatal(err)
			}
		}
		// Every voter votes once, a third of them twice more at the same
		// time with the same choice: all concurrently, into one isolate.
		type job struct{ i int }
		jobs := make(chan job)
		var mu sync.Mutex
		accepted := map[int]int{} // voter → 202s
		var failures []string
		var wg sync.WaitGroup
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					st, body, err := e.voteRetrying("crowd", toks[j.i], j.i%3)
					mu.Lock()
					switch {
					case err != nil:
						failures = append(failures, err.Error())
					case st == http.StatusAccepted:
						accepted[j.i]++
					case st != http.StatusConflict:
						failures = append(failures, fmt.Sprintf("voter %d: %d %s", j.i, st, body))
					}
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < voters; i++ {
			jobs <- job{i}
			if i%3 == 0 {
				jobs <- job{i}
				jobs <- job{i}
			}
		}
		close(jobs)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d votes failed, e.g. %s", len(failures), failures[0])
		}
		if len(accepted) != voters {
			t.Fatalf("%d voters got a 202, want %d", len(accepted), voters)
		}
		counts := e.waitCounted("crowd", voters, 60*time.Second)
		want := []int64{100, 100, 100}
		for i := range want {
			if counts[i] != want[i] {
				t.Fatalf("counts %v, want %v", counts, want)
			}
		}
	})

	t.Run("VoteCheck", func(t *testing.T) {
		e.t = t
		voteCheck(t, e)
	})

	t.Run("AnnouncedCloseKeepsEveryPromise", func(t *testing.T) {
		e.t = t
		closetest.Run(t, closetest.Edge{URL: e.url, Admin: e.admin}, "closing")
	})

	t.Run("OriginOutageLosesNoAcknowledgedVote", func(t *testing.T) {
		e.t = t
		e.createPoll("outage")
		const voters = 120
		toks := make([]string, voters)
		for i := range toks {
			var err error
			if toks[i], err = e.token("outage"); err != nil {
				t.Fatal(err)
			}
		}
		acked := 0
		for i := 0; i < voters; i++ {
			if i == voters/3 {
				e.origin.Stop()
			}
			if i == 2*voters/3 {
				e.origin.Restart()
			}
			st, body, err := e.vote("outage", toks[i], i%3)
			if err != nil {
				t.Fatal(err)
			}
			switch st {
			case http.StatusAccepted:
				acked++
			case http.StatusServiceUnavailable:
				// told it failed: allowed, must not be counted
			default:
				t.Fatalf("voter %d: %d %s", i, st, body)
			}
		}
		if acked < 2*voters/3 {
			t.Fatalf("only %d of %d votes acknowledged: the queue should take votes while the origin is down", acked, voters)
		}
		e.waitCounted("outage", int64(acked), 90*time.Second)
	})
}

// do sends one request through the Worker.
func (e *edgeEnv) do(method, path string, header map[string]string, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, what string, resp *http.Response, b []byte, status int, code string) {
	t.Helper()
	var r struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != status || json.Unmarshal(b, &r) != nil || r.Error.Code != code || r.Error.Message == "" {
		t.Errorf("%s: %d %s, want %d with code %q", what, resp.StatusCode, b, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
}

// errorsAndCORS checks, through workerd and the glue, that bad requests get
// their documented status and JSON error and change nothing, and that CORS
// (preflight and simple) answers carry the right headers.
func errorsAndCORS(t *testing.T, e *edgeEnv) {
	e.createPoll("errs")
	tok, err := e.token("errs")
	if err != nil {
		t.Fatal(err)
	}
	votes := "/v1/polls/errs/votes"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		what   string
		method string
		path   string
		header map[string]string
		body   string
		status int
		code   string
	}{
		{"unknown poll", "GET", "/v1/polls/nope", nil, "", 404, "not_found"},
		{"unknown route", "GET", "/v2/whatever", nil, "", 404, "not_found"},
		{"vote without token", "POST", votes, jsonCT, `{"choice":1}`, 401, "unauthorized"},
		{"vote with a forged token", "POST", votes, jsonCT, `{"token":"` + tok[:len(tok)-2] + `xx","choice":1}`, 401, "unauthorized"},
		{"malformed JSON", "POST", votes, jsonCT, `{"token":"` + tok + `","choice":`, 400, "invalid"},
		{"choice out of range", "POST", votes, jsonCT, `{"token":"` + tok + `","choice":7}`, 400, "invalid"},
		{"wrong media type", "POST", votes, map[string]string{"Content-Type": "text/plain"}, `{"token":"` + tok + `","choice":1}`, 415, "unsupported_media_type"},
		{"body too large", "POST", votes, jsonCT, `{"token":"` + tok + `","choice":1,"pad":"` + strings.Repeat("x", 8192) + `"}`, 413, "too_large"},
		// The token is checked first: it names another poll.
		{"vote for an unknown poll", "POST", "/v1/polls/nope/votes", jsonCT, `{"token":"` + tok + `","choice":1}`, 401, "unauthorized"},
	} {
		resp, b := e.do(c.method, c.path, c.header, c.body)
		wantError(t, c.what, resp, b, c.status, c.code)
	}
	// None of that was a vote: the token still votes once.
	if st, body, err := e.vote("errs", tok, 0); err != nil || st != http.StatusAccepted {
		t.Fatalf("vote after the bad requests: %d %s %v, want 202", st, body, err)
	}
	e.waitCounted("errs", 1, 30*time.Second)

	// A closed poll refuses votes with 403 once the edge's copy of its config
	// expires (the origin's Cache-Control decides when).
	if st, b := e.admin("POST", "polls/errs/close", ""); st/100 != 2 {
		t.Fatalf("close poll: %d %s", st, b)
	}
	tok2, err := e.token("errs")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := e.do("POST", votes, jsonCT, `{"token":"`+tok2+`","choice":1}`)
		if resp.StatusCode == http.StatusForbidden {
			wantError(t, "vote on a closed poll", resp, b, 403, "forbidden")
			break
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("vote on a closed poll: %d %s, want 403 once the config expires", resp.StatusCode, b)
		}
		tok2, _ = e.token("errs")
		time.Sleep(250 * time.Millisecond)
	}

	// CORS: a preflight from another site, and the simple request after it.
	resp, b := e.do("OPTIONS", votes, map[string]string{
		"Origin": "https://news.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "content-type"}, "")
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") == "" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	resp, _ = e.do("GET", "/v1/polls/errs/results", map[string]string{"Origin": "https://news.example"}, "")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("cross-site results read: %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestWorkerRateLimitBinding runs the Worker with a Rate Limiting binding
// (simulated locally by workerd) and the isolate's own per-IP limits off:
// the binding alone must turn the fourth token request within its period
// into a 429 with Retry-After.
func TestWorkerRateLimitBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) { workerRateLimitBinding(t, tc) })
	}
}

func workerRateLimitBinding(t *testing.T, toolchain string) {
	e := startEdgeOpts(t, edgeOptions{toolchain: toolchain, extra: `[[ratelimits]]
name = "RATE_LIMITER"
namespace_id = "1001"
simple = { limit = 3, period = 60 }
`})
	e.createPoll("rl")
	for i := 1; i <= 3; i++ {
		if _, err := e.token("rl"); err != nil {
			t.Fatalf("token request %d of 3: %v", i, err)
		}
	}
	resp, b := e.do("GET", "/v1/polls/rl", nil, "")
	wantError(t, "fourth token request", resp, b, http.StatusTooManyRequests, "rate_limited")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", resp.Header)
	}
	// Votes have their own key: the first vote still passes the binding.
	resp, b = e.do("GET", "/v1/polls/rl", map[string]string{"Cf-Connecting-Ip": "198.51.100.7"}, "")
	if resp.StatusCode == http.StatusOK {
		// workerd let the client name its address: a new key, a new budget.
		var r struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(b, &r) != nil || r.Token == "" {
			t.Fatalf("token for another address: %s", b)
		}
		if st, body, err := e.vote("rl", r.Token, 0); err != nil || st != http.StatusAccepted {
			t.Fatalf("vote: %d %s %v, want 202", st, body, err)
		}
	} else {
		t.Logf("workerd ignored the client's Cf-Connecting-Ip (%d): same key, budget spent", resp.StatusCode)
		wantError(t, "token request naming another address", resp, b, http.StatusTooManyRequests, "rate_limited")
	}
}

// originRequests sums the origin's request counter for route (all statuses).
func (e *edgeEnv) originRequests(route string) int {
	e.t.Helper()
	resp, err := client.Get(e.origin.URL + "/metrics")
	if err != nil {
		e.t.Fatalf("origin metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	prefix := `edgepoll_origin_requests_total{route="` + route + `"`
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				n += int(v)
			}
		}
	}
	return n
}

// oneOriginLoadPerPeriod fires concurrent reads of a fresh poll's config and
// results through the Worker: the origin must see one config request and one
// results request per cache period (the origin sends max-age=5 and 1).
func oneOriginLoadPerPeriod(t *testing.T, e *edgeEnv) {
	e.createPoll("burst")
	polls0, results0 := e.originRequests("poll"), e.originRequests("results")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan string, 128)
	for i := 0; i < 64; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if resp, b, err := e.get("/v1/polls/burst"); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Sprintf("GET poll: %v %s", err, b)
			}
		}()
		go func() {
			defer wg.Done()
			if resp, b, err := e.get("/v1/polls/burst/results"); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Sprintf("GET results: %v %s", err, b)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	polls, results := e.originRequests("poll")-polls0, e.originRequests("results")-results0
	if polls != 1 {
		t.Errorf("64 concurrent config reads in %s cost the origin %d config requests, want 1", elapsed, polls)
	}
	if max := 1 + int(elapsed/time.Second); results < 1 || results > max {
		t.Errorf("64 concurrent results reads in %s cost the origin %d results requests, want 1..%d", elapsed, results, max)
	}
}

// sustainedVoting drives the Worker with concurrent voters for a few seconds
// (tokens minted with the test's TOKEN_SECRET, as the edge mints them): every
// vote must be acknowledged, and counted exactly once by the origin. It is
// the regression test for requests finishing in another request's context
// under sustained load (which showed as bursts of 500s and 503s).
//
// EDGEPOLL_SUSTAIN (a duration, default 6s) runs it longer: make
// soak-worker runs a minute against each build.
func sustainedVoting(t *testing.T, e *edgeEnv) {
	const workers = 32
	dur := 6 * time.Second
	if v := os.Getenv("EDGEPOLL_SUSTAIN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("EDGEPOLL_SUSTAIN=%q: want a duration such as 60s", v)
		}
		dur = d
	}
	e.createPoll("soak")
	var (
		mu       sync.Mutex
		accepted int64
		failures = map[string]int{}
	)
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				var v shared.VoterID
				_, _ = rand.Read(v[:])
				st, body, err := e.vote("soak", token.Issue([]byte(e2eTokenSecret), "soak", v), int(v[0]%3))
				mu.Lock()
				switch {
				case err != nil:
					failures[err.Error()]++
				case st == http.StatusAccepted:
					accepted++
				default:
					if len(body) > 120 {
						body = body[:120]
					}
					failures[fmt.Sprintf("%d %s", st, body)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for f, n := range failures {
		t.Errorf("%d votes failed: %s", n, f)
	}
	t.Logf("%d votes acknowledged in %s (%.0f/s), %d failed", accepted, dur, float64(accepted)/dur.Seconds(), len(failures))
	if accepted == 0 {
		t.Fatal("no vote was acknowledged")
	}
	e.waitCounted("soak", accepted, 60*time.Second)
}

// voteCheck runs the table's vote-check rows through workerd: counted
// false then true, cookie and bearer, CORS, the errors, and the per-voter
// limit (RATE_CHECK's default burst of 10).
func voteCheck(t *testing.T, e *edgeEnv) {
	e.createPoll("check")
	tok, err := e.token("check")
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/polls/check/vote"
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	counted := func(want bool, h map[string]string) {
		t.Helper()
		resp, b := e.do("GET", path, h, "")
		var c struct {
			Poll    string `json:"poll"`
			Receipt string `json:"receipt"`
			Counted *bool  `json:"counted"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &c) != nil || c.Counted == nil || *c.Counted != want ||
			c.Poll != "check" || len(c.Receipt) != 32 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("vote check: %d %v %s, want counted %v", resp.StatusCode, resp.Header, b, want)
		}
	}
	counted(false, bearer)
	if st, body, err := e.vote("check", tok, 1); err != nil || st != http.StatusAccepted {
		t.Fatalf("vote: %d %s %v", st, body, err)
	}
	e.waitCounted("check", 1, 30*time.Second)
	time.Sleep(edge.VotedCacheTTL) // the isolate keeps the "not counted" answer this long
	counted(true, bearer)
	counted(true, map[string]string{"Cookie": "ep_check=" + tok, "Origin": "https://page.example"})
	resp, b := e.do("GET", path, map[string]string{"Authorization": "Bearer " + tok, "Origin": "https://page.example"}, "")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://page.example" {
		t.Errorf("vote check CORS: %v %s", resp.Header, b)
	}
	resp, b = e.do("OPTIONS", path, map[string]string{"Origin": "https://page.example", "Access-Control-Request-Method": "GET"}, "")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "GET, OPTIONS" {
		t.Errorf("vote check preflight: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	resp, b = e.do("GET", path, nil, "")
	wantError(t, "no token", resp, b, 401, "unauthorized")
	resp, b = e.do("GET", path, map[string]string{"Authorization": "Bearer nope"}, "")
	wantError(t, "bad token", resp, b, 401, "unauthorized")
	resp, b = e.do("POST", path, map[string]string{"Content-Type": "application/json"}, "{}")
	wantError(t, "POST", resp, b, 405, "invalid")
	if resp.Header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("POST vote check: Allow %q", resp.Header.Get("Allow"))
	}
	resp, b = e.do("GET", "/v1/polls/bad.id/vote", bearer, "")
	wantError(t, "bad poll id", resp, b, 404, "not_found")
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		resp, b = e.do("GET", path, bearer, "")
		switch resp.StatusCode {
		case 200:
		case 429:
			wantError(t, "past RATE_CHECK", resp, b, 429, "rate_limited")
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			limited = true
		default:
			t.Fatalf("vote check %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if !limited {
		t.Errorf("40 vote checks in a row were never limited (RATE_CHECK default 1/s:10)")
	}
}

// TestWorkerPanic: a panic in the handler costs its own request a 500 and
// the isolate goes on serving. Standard Go recovers it in the Worker;
// TinyGo's recover() does nothing on wasm, so there the instance traps and
// the glue answers 500, logs it and starts a fresh instance for the next
// event. Built with -tags edgepoll_paniccheck (GET /__panic panics).
func TestWorkerPanic(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) {
			e := startEdgeOpts(t, edgeOptions{toolchain: tc, tags: "edgepoll_paniccheck"})
			e.createPoll("pan")
			for i := range 3 {
				resp, b, err := e.get("/__panic")
				if err != nil {
					t.Fatalf("GET /__panic #%d: %v", i+1, err)
				}
				if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), `"code":"internal"`) {
					t.Fatalf("GET /__panic #%d = %d %s, want 500 internal JSON", i+1, resp.StatusCode, b)
				}
				tok, err := e.token("pan")
				if err != nil {
					t.Fatalf("after panic #%d: %v", i+1, err)
				}
				if st, body, err := e.vote("pan", tok, i%3); err != nil || st != http.StatusAccepted {
					t.Fatalf("after panic #%d: vote %d %s %v, want 202", i+1, st, body, err)
				}
			}
			e.waitCounted("pan", 3, 30*time.Second)
			if tc == toolchainTinyGo && !strings.Contains(e.logs.String(), "Go instance stopped") {
				t.Errorf("TinyGo: no \"Go instance stopped\" in the log")
			}
		})
	}
}
