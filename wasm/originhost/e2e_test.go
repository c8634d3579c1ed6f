package originhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
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
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	host, err := originhost.New(originhost.Config{
		OriginURL: o.URL, IngestKey: o.IngestKey, EdgeID: "e2e",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TOKEN_SECRET": tokenSecret, "RATE_IP_VOTES": "off", "RATE_IP_TOKENS": "off", "COOKIE_SECURE": "false",
	}
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
	req, _ := http.NewRequest(method, s.origin.URL+"/v1/admin/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.origin.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	return b
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
// choice (i % options) twice. It returns how many first votes got 202, and
// fails on any status other than 202 or 409.
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
			acked := false
			for range 2 { // the repeat gets 409 from the same isolate, or 202 from another: the origin dedupes
				code, err := s.vote(id, tok, choice)
				if err != nil {
					errs <- err
					return
				}
				switch code {
				case 202:
					acked = true
				case 409:
				default:
					errs <- fmt.Errorf("voter %d: vote status %d", i, code)
					return
				}
			}
			if !acked {
				errs <- fmt.Errorf("voter %d: no vote acknowledged", i)
				return
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
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStack(t, 3)
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

	st := s.host.Stats()
	if st.Poison != 0 || st.QueueFull != 0 || st.Receipt.Accepted != 600 {
		t.Fatalf("host stats %+v: want no poison, no queue-full, 600 accepted", st)
	}
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
