package originhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/internal/kindstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
	"github.com/edgepoll/edgepoll/wasm/originhost"
)

func TestMain(m *testing.M) {
	code := m.Run()
	wasmtest.Cleanup()
	os.Exit(code)
}

const tokenSecret = "e2e-token-secret-0123456789abcdef0123456789"

// stack is harness → origin → Redis, all real, over loopback.
type stack struct {
	origin  *origintest.Origin
	host    *originhost.Host
	harness *harness.Harness
	url     string
	client  *http.Client
}

func startStack(t *testing.T, instances int) *stack {
	t.Helper()
	return startStackWith(t, stackOptions{instances: instances})
}

// stackOptions vary startStack's stack.
type stackOptions struct {
	instances int
	env       map[string]string // edge variables added to (or replacing) the defaults
	now       func() time.Time  // the host's clock (default time.Now)
	flush     time.Duration     // the host's IdentityFlush (default its default)
	toolchain string            // the guest's (wasmtest.Go by default)
}

// skewCheck turns the host's clock-skew refusal off for a test clock, which
// tests move on purpose.
func skewCheck(now func() time.Time) time.Duration {
	if now != nil {
		return -1
	}
	return 0
}

func startStackWith(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if opts.toolchain == "" {
		opts.toolchain = wasmtest.Go
	}
	module := wasmtest.BuildWith(t, opts.toolchain, wasmtest.EdgeGuest, "")
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	// The host's and harness's warnings and errors (a retried ingest, an
	// unreadable receipt, a replaced instance) are shown when the test fails:
	// a shortfall in the receipts' count says nothing by itself.
	logs := &syncbuf.Buffer{}
	quiet := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host and harness warnings (tail):\n%s", logs.Tail(6000))
		}
	})
	host, err := originhost.New(originhost.Config{
		OriginURL: o.URL, IngestKey: o.IngestKey, EdgeID: "e2e", Now: opts.now,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: quiet,
		MaxClockSkew: skewCheck(opts.now), IdentityFlush: opts.flush,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TOKEN_SECRET": tokenSecret, "RATE_IP_VOTES": "off", "RATE_IP_TOKENS": "off", "COOKIE_SECURE": "false",
	}
	maps.Copy(env, opts.env)
	instances := opts.instances
	h, err := harness.New(context.Background(), module, host, harness.Config{
		Instances: instances, CacheDir: t.TempDir(), Logger: quiet,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.ShutdownWithContext(ctx)
		h.Close(ctx)
		host.Close(ctx)
	})
	return &stack{origin: o, host: host, harness: h, url: "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

func (s *stack) admin(t *testing.T, method, path, body string) []byte {
	t.Helper()
	st, b := s.adminStatus(t, method, path, body)
	if st >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, st, b)
	}
	return b
}

// adminStatus calls the origin's admin API and returns status and body.
func (s *stack) adminStatus(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.origin.URL+"/v1/admin/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.origin.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *stack) createPoll(t *testing.T, id string, options int) {
	t.Helper()
	var opts []string
	for i := range options {
		opts = append(opts, fmt.Sprintf(`{"label":"option %d"}`, i))
	}
	s.admin(t, "POST", "polls", fmt.Sprintf(`{"id":%q,"title":"e2e","options":[%s],"kind":"single","visibility":"live"}`, id, strings.Join(opts, ",")))
	s.admin(t, "POST", "polls/"+id+"/open", "")
}

// token gets a voter token from the edge.
func (s *stack) token(id string) (string, error) {
	resp, err := s.client.Get(s.url + "/v1/polls/" + id)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Token == "" {
		return "", fmt.Errorf("GET poll: status %d, err %v", resp.StatusCode, err)
	}
	return body.Token, nil
}

// vote posts a vote and returns the status.
func (s *stack) vote(id, tok string, choice int) (int, error) {
	body := fmt.Sprintf(`{"token":%q,"choice":%d}`, tok, choice)
	resp, err := s.client.Post(s.url+"/v1/polls/"+id+"/votes", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// voters runs n voters from offset concurrently (32 at a time); each votes
// choice (i % options) twice, and the first vote must get 202 and the
// repeat 409, whichever guest instance serves each (one harness is one
// edge location, its dedupe memory shared by the pool).
func (s *stack) voters(t *testing.T, id string, from, n, options int, counts []int, mu *sync.Mutex) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			tok, err := s.token(id)
			if err != nil {
				errs <- err
				return
			}
			choice := i % options
			for n, want := range []int{202, 409} {
				code, err := s.vote(id, tok, choice)
				if err != nil {
					errs <- err
					return
				}
				if code != want {
					errs <- fmt.Errorf("voter %d, vote %d: status %d, want %d", i, n+1, code, want)
					return
				}
			}
			mu.Lock()
			counts[choice]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

type results struct {
	Counts []int `json:"counts"`
	Total  int   `json:"total"`
	Voters int   `json:"voters"`
}

// waitCounts waits until the origin's fresh results equal want.
func (s *stack) waitCounts(t *testing.T, id string, want []int) {
	t.Helper()
	total := 0
	for _, c := range want {
		total += c
	}
	deadline := time.Now().Add(30 * time.Second)
	var r results
	for time.Now().Before(deadline) {
		r = results{}
		json.Unmarshal(s.admin(t, "GET", "polls/"+id+"/results", ""), &r)
		if r.Voters == total && fmt.Sprint(r.Counts) == fmt.Sprint(want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("origin results = %+v, want counts %v (voters %d); host stats %+v", r, want, total, s.host.Stats())
}

// TestEndToEnd: hundreds of concurrent voters, each voting twice, through
// harness → origin → Redis, end with exact counts; the origin is stopped in
// mid-run (votes keep being acknowledged from the queue) and started again,
// and no acknowledged vote is lost.
// It runs once per toolchain the guest is built with.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	for _, tc := range wasmtest.Toolchains() {
		t.Run(tc, func(t *testing.T) { testEndToEnd(t, tc) })
	}
}

func testEndToEnd(t *testing.T, toolchain string) {
	s := startStackWith(t, stackOptions{instances: 3, toolchain: toolchain})
	const id, options = "e2e", 3
	s.createPoll(t, id, options)
	counts := make([]int, options)
	var mu sync.Mutex

	s.voters(t, id, 0, 300, options, counts, &mu)
	s.waitCounts(t, id, counts)

	// The origin goes away: votes are still acknowledged (queued) and the
	// poll config is served from the cache.
	s.origin.Stop()
	s.voters(t, id, 300, 200, options, counts, &mu)
	if st := s.host.Stats(); st.Queued == 0 && st.Retries == 0 {
		t.Fatalf("origin down, yet nothing queued or retried: %+v", st)
	}
	s.origin.Restart()
	s.voters(t, id, 500, 100, options, counts, &mu)
	s.waitCounts(t, id, counts)

	// The origin has counted every vote; the host learns so from the last
	// receipts a moment later.
	st := s.host.Stats()
	for deadline := time.Now().Add(30 * time.Second); st.Queued != 0 && time.Now().Before(deadline); st = s.host.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Poison != 0 || st.QueueFull != 0 || st.Receipt.Accepted != 600 {
		t.Fatalf("host stats %+v: want no poison, no queue-full, 600 accepted", st)
	}
}

// TestKindsEndToEnd: scale, ranked and words polls voted through the
// harness's guest and counted exactly by the origin.
func TestKindsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStack(t, 2)
	get := func(path string) (*http.Response, []byte, error) {
		resp, err := s.client.Get(s.url + path)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	kindstest.Run(t, s.url, func(method, path, body string) (int, []byte) { return s.adminStatus(t, method, path, body) }, get)
}

// TestQueueFull: with the origin down and a tiny queue, the voter past the
// queue's bound gets 503 (the vote is not acknowledged), and every
// acknowledged vote is counted once the origin is back.
func TestQueueFull(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	host, err := originhost.New(originhost.Config{
		OriginURL: o.URL, IngestKey: o.IngestKey, QueueVotes: 5, BatchVotes: 5, Senders: 1,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKEN_SECRET": tokenSecret, "RATE_IP_VOTES": "off", "RATE_IP_TOKENS": "off"}
	h, err := harness.New(context.Background(), module, host, harness.Config{
		Instances: 1, CacheDir: t.TempDir(), Logger: quiet,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	s := &stack{origin: o, host: host, harness: h, client: &http.Client{Timeout: 10 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP}
	go srv.Serve(ln)
	defer srv.Shutdown()
	s.url = "http://" + ln.Addr().String()
	s.createPoll(t, "full", 2)
	if _, err := s.token("full"); err != nil { // warm the poll cache
		t.Fatal(err)
	}
	o.Stop()
	acked, refused := 0, 0
	for range 30 {
		tok, err := s.token("full")
		if err != nil {
			t.Fatal(err)
		}
		code, err := s.vote("full", tok, 1)
		if err != nil {
			t.Fatal(err)
		}
		switch code {
		case 202:
			acked++
		case 503:
			refused++
		default:
			t.Fatalf("vote status %d, want 202 or 503", code)
		}
	}
	// The queue holds 5, the gatherer one batch of up to 5 and the sender
	// another in retry: at most 15 acknowledged.
	if refused == 0 || acked > 15 {
		t.Fatalf("origin down, queue of 5: %d acknowledged, %d refused; want refusals and at most 15 acknowledged", acked, refused)
	}
	o.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := host.Close(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	s.waitCounts(t, "full", []int{0, acked})
}

// TestRepeatVotesOneLocation: 300 voters each vote twice through one
// harness with a pool of four guest instances: every first vote is 202,
// every repeat 409 whichever instance serves it, and the origin counts
// exactly 300.
func TestRepeatVotesOneLocation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStack(t, 4)
	const id, options = "repeat", 3
	s.createPoll(t, id, options)
	counts := make([]int, options)
	var mu sync.Mutex
	s.voters(t, id, 0, 300, options, counts, &mu)
	s.waitCounts(t, id, counts)
	if st := s.host.Stats(); st.Submitted != 300 {
		t.Fatalf("host stats %+v: want exactly 300 votes handed off", st)
	}
}

// check asks the edge whether the voter holding tok ("" for none) is
// counted in poll id, and returns the status and body.
func (s *stack) check(t *testing.T, id, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/polls/"+id+"/vote", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/polls/%s/vote: %v", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET /v1/polls/%s/vote: Content-Type %q, want JSON", id, ct)
	}
	return resp.StatusCode, string(b)
}

// TestVoteCheck: GET /v1/polls/{id}/vote through harness → origin → Redis
// answers counted true once the voter's vote is applied, false for a voter
// who never voted, 401 without a token, 429 past RATE_CHECK, and the
// documented 404 for a bad poll id or an unknown poll.
func TestVoteCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	c := &frozenClock{t: time.Now()} // the check cache's TTL and the rate limit count on it, not on real time
	s := startStackWith(t, stackOptions{instances: 3, env: map[string]string{"RATE_CHECK": "3/m:3"}, now: c.now})
	const id = "check"
	s.createPoll(t, id, 2)
	c.set(time.Now()) // votes carry the host's clock: after the poll opened
	voted, err := s.token(id)
	if err != nil {
		t.Fatal(err)
	}
	never, err := s.token(id)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := s.vote(id, voted, 1); err != nil || code != 202 {
		t.Fatalf("vote: %d, %v", code, err)
	}
	s.waitCounts(t, id, []int{0, 1})

	if code, body := s.check(t, id, voted); code != 200 || !strings.Contains(body, `"counted":true`) || !strings.Contains(body, `"poll":"check"`) {
		t.Fatalf("check of a counted voter: %d %s, want 200 counted true", code, body)
	}
	for i := range 3 { // RATE_CHECK 3/m:3 per voter: the fourth is refused
		if code, body := s.check(t, id, never); code != 200 || !strings.Contains(body, `"counted":false`) {
			t.Fatalf("check %d of a voter who never voted: %d %s, want 200 counted false", i+1, code, body)
		}
	}
	if code, body := s.check(t, id, never); code != 429 || !strings.Contains(body, `"code":"rate_limited"`) {
		t.Fatalf("fourth check at RATE_CHECK 3/m:3: %d %s, want 429 rate_limited", code, body)
	}
	if code, body := s.check(t, id, ""); code != 401 || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Fatalf("check without a token: %d %s, want 401 unauthorized", code, body)
	}
	if code, body := s.check(t, id, "not-a-token"); code != 401 || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Fatalf("check with a bad token: %d %s, want 401 unauthorized", code, body)
	}
	if code, body := s.check(t, "bad.id", voted); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("check of a bad poll id: %d %s, want 404 not_found", code, body)
	}
	// A token valid for a poll the origin does not know: the origin's 404.
	unknown := token.Issue([]byte(tokenSecret), "nope", shared.VoterID{1, 2, 3})
	if code, body := s.check(t, "nope", unknown); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("check of an unknown poll: %d %s, want 404 not_found", code, body)
	}
	if st := s.host.Stats(); st.VotedFetches != 3 {
		t.Fatalf("host stats %+v: want 3 vote checks at the origin (one per voter and poll within the cache TTL)", st)
	}
	c.add(edge.VotedCacheTTL) // the cached answers expire; the limit still holds
	if code, body := s.check(t, id, voted); code != 200 || !strings.Contains(body, `"counted":true`) {
		t.Fatalf("check after the cache TTL: %d %s, want 200 counted true", code, body)
	}
	if st := s.host.Stats(); st.VotedFetches != 4 {
		t.Fatalf("host stats %+v: want a fourth vote check at the origin after the cache TTL", st)
	}
}

// frozenClock is a host clock that moves only when told to.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *frozenClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *frozenClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *frozenClock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestPollConfigAgeBoundThroughOrigin: with the real origin (max-age=3,
// stale-while-revalidate=5) and a host clock the test moves, the harness
// serves a poll's config while it was asked for (or revalidated, a 304)
// less than shared.MaxConfigAge ago, and answers 503 once it is older and
// the origin cannot be reached: never a config older than the bound.
func TestPollConfigAgeBoundThroughOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	c := &frozenClock{t: time.Now()}
	s := startStackWith(t, stackOptions{instances: 2, now: c.now})
	const id = "age"
	s.createPoll(t, id, 2)
	c.set(time.Now()) // votes carry the host's clock: after the poll opened
	fetches := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for s.host.Stats().PollFetches < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := s.host.Stats().PollFetches; got != n {
			t.Fatalf("%d poll config fetches, want %d", got, n)
		}
	}
	getPoll := func(want int, when string) {
		t.Helper()
		resp, err := s.client.Get(s.url + "/v1/polls/" + id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: GET /v1/polls/%s = %d %s, want %d", when, id, resp.StatusCode, b, want)
		}
	}
	getPoll(200, "first fetch") // asked at T0
	fetches(1)
	tok, err := s.token(id)
	if err != nil {
		t.Fatal(err)
	}
	c.add(4 * time.Second) // past max-age: served stale while the origin revalidates (304)
	getPoll(200, "T0+4s")
	fetches(2)

	s.origin.Stop()
	c.add(shared.MaxConfigAge - 100*time.Millisecond) // revalidated at T0+4s, MaxConfigAge-100ms ago
	getPoll(200, "origin down, config revalidated MaxConfigAge-100ms ago")
	fetches(3) // its background revalidation failed
	c.add(200 * time.Millisecond)
	getPoll(503, "origin down, config revalidated MaxConfigAge+100ms ago")
	if code, err := s.vote(id, tok, 0); err != nil || code != 503 {
		t.Fatalf("vote against a config older than MaxConfigAge: %d, %v; want 503", code, err)
	}

	s.origin.Restart()
	getPoll(200, "origin back")
	if code, err := s.vote(id, tok, 0); err != nil || code != 202 {
		t.Fatalf("vote with the origin back: %d, %v; want 202", code, err)
	}
	s.waitCounts(t, id, []int{1, 0})
}
