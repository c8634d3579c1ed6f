package originhost_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
	"github.com/edgepoll/edgepoll/wasm/originhost"
)

var key = sign.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// fakeOrigin serves one poll and its results with ETags and Cache-Control,
// counting requests, and an ingest endpoint answering ingestStatus.
type fakeOrigin struct {
	polls, results, revalidated, ingests atomic.Int64
	ingestStatus                         atomic.Int64
	delay                                time.Duration
	pollStatus                           atomic.Int64 // when non-zero, the poll config answers this status
	onPoll                               func()       // when set, runs on every poll config request
	verifier                             *sign.Verifier
	votes                                atomic.Int64
}

func (f *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/polls/p1":
		f.polls.Add(1)
		time.Sleep(f.delay)
		if f.onPoll != nil {
			f.onPoll()
		}
		if st := f.pollStatus.Load(); st != 0 {
			http.Error(w, "failing", int(st))
			return
		}
		if r.Header.Get("Accept") != shared.ContentTypeMsgpack {
			http.Error(w, "want msgpack", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=5, stale-while-revalidate=30")
		if r.Header.Get("If-None-Match") == `"v1"` {
			f.revalidated.Add(1)
			w.WriteHeader(304)
			return
		}
		p := shared.Poll{ID: "p1", Title: "t", Options: []shared.Option{{Label: "a"}, {Label: "b"}}, Kind: shared.KindSingle, State: shared.StateOpen, Visibility: shared.VisibilityLive}
		b, _ := shared.MarshalPoll(&p)
		w.Write(b)
	case r.URL.Path == "/v1/polls/p1/results":
		f.results.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"r1"`)
		w.Header().Set("Cache-Control", "public, max-age=1, stale-while-revalidate=5")
		io.WriteString(w, `{"poll":"p1","accept":"`+r.Header.Get("Accept")+`"}`)
	case r.URL.Path == "/v1/ingest":
		f.ingests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := f.verifier.Verify(r.Header.Get(sign.HeaderKeyID), r.Header.Get(sign.HeaderTimestamp), r.Header.Get(sign.HeaderSignature), body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if st := f.ingestStatus.Load(); st != 200 {
			http.Error(w, "nope", int(st))
			return
		}
		var b shared.Batch
		if err := shared.UnmarshalBatch(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.votes.Add(int64(len(b.Votes)))
		rb, _ := shared.MarshalReceipt(&shared.Receipt{Batch: b.ID, Accepted: uint32(len(b.Votes))})
		w.Write(rb)
	default:
		http.Error(w, `{"error":{"code":"not_found","message":"unknown poll"}}`, 404)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func start(t *testing.T, f *fakeOrigin, mod func(*originhost.Config)) (*originhost.Host, *clock) {
	t.Helper()
	f.verifier = sign.NewVerifier([]sign.Key{key}, 0, nil)
	f.ingestStatus.CompareAndSwap(0, 200)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := &clock{t: time.Now()} // batches are signed with this clock: keep it near real time
	cfg := originhost.Config{OriginURL: srv.URL, IngestKey: key, Now: c.now, BatchDelay: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		SpoolDir: t.TempDir(), MaxClockSkew: -1} // c is a test clock, moved on purpose
	if mod != nil {
		mod(&cfg)
	}
	h, err := originhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, c
}

// TestPollCache: one origin request per max-age, coalesced under concurrent
// misses, revalidated with If-None-Match after expiry.
func TestPollCache(t *testing.T) {
	f := &fakeOrigin{delay: 50 * time.Millisecond}
	h, c := start(t, f, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p, err := h.Poll(ctx, "p1"); err != nil || p.ID != "p1" {
				t.Errorf("Poll = %v, %v", p, err)
			}
		}()
	}
	wg.Wait()
	if n := f.polls.Load(); n != 1 {
		t.Fatalf("20 concurrent misses made %d origin requests, want 1", n)
	}
	c.add(4 * time.Second)
	h.Poll(ctx, "p1")
	if n := f.polls.Load(); n != 1 {
		t.Fatalf("within max-age: %d origin requests, want 1", n)
	}
	c.add(2 * time.Second) // past max-age, inside stale-while-revalidate: stale answer, background revalidation
	if _, err := h.Poll(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.revalidated.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f.revalidated.Load() != 1 {
		t.Fatalf("no If-None-Match revalidation after max-age (origin requests %d)", f.polls.Load())
	}
	raw, err := h.PollBytes(ctx, "p1")
	var p shared.Poll
	if err != nil || shared.UnmarshalPoll(raw, &p) != nil || p.ID != "p1" {
		t.Fatalf("PollBytes after revalidation: %v", err)
	}
	if _, err := h.Poll(ctx, "nope"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("unknown poll: %v, want ENOTFOUND", err)
	}
	if _, err := h.Poll(ctx, "bad id!"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("invalid poll id: %v, want ENOTFOUND", err)
	}
}

// TestPollConfigAgeBound: Poll never returns a config the host asked the
// origin for MaxConfigAge ago or longer, even when the origin's
// Cache-Control allows more (here max-age=5, stale-while-revalidate=30) and
// even when the origin is failing (no stale-if-error past the bound). The
// age counts from when the fetch started, not when the answer came, and a
// 304 revalidation makes the config young again.
func TestPollConfigAgeBound(t *testing.T) {
	f := &fakeOrigin{}
	c := &clock{t: time.Now()}
	var lag atomic.Int64 // how far the host's clock moves while the origin answers
	f.onPoll = func() { c.add(time.Duration(lag.Swap(0))) }
	h, _ := start(t, f, func(cfg *originhost.Config) { cfg.Now = c.now })
	ctx := context.Background()
	fetches := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for h.Stats().PollFetches < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := h.Stats().PollFetches; got != n {
			t.Fatalf("%d poll fetches, want %d", got, n)
		}
	}
	served := func(when string) {
		t.Helper()
		if p, err := h.Poll(ctx, "p1"); err != nil || p.ID != "p1" {
			t.Fatalf("%s: Poll = %v, %v; want the cached config", when, p, err)
		}
	}
	refused := func(when string) {
		t.Helper()
		if p, err := h.Poll(ctx, "p1"); shared.ErrorCode(err) != shared.EUNAVAILABLE {
			t.Fatalf("%s: Poll = %v, %v; want EUNAVAILABLE", when, p, err)
		}
		if _, err := h.PollBytes(ctx, "p1"); shared.ErrorCode(err) != shared.EUNAVAILABLE {
			t.Fatalf("%s: PollBytes: %v; want EUNAVAILABLE", when, err)
		}
	}
	const almost = shared.MaxConfigAge - 100*time.Millisecond

	lag.Store(int64(2 * time.Second)) // asked at T0, answered at T0+2s
	served("first fetch")
	fetches(1)
	f.pollStatus.Store(http.StatusInternalServerError)
	c.add(almost - 2*time.Second)
	served("origin failing, asked MaxConfigAge-100ms ago") // stale, revalidation in the background fails
	fetches(2)
	c.add(100*time.Millisecond + time.Millisecond)
	refused("origin failing, asked MaxConfigAge+1ms ago (answered 2s after asking)")

	f.pollStatus.Store(0)
	revalidated := f.revalidated.Load()
	served("origin back") // a 304: the same config, asked just now
	if f.revalidated.Load() != revalidated+1 {
		t.Fatalf("the origin's answer was not a 304 revalidation")
	}
	f.pollStatus.Store(http.StatusInternalServerError)
	n := h.Stats().PollFetches
	c.add(almost)
	served("origin failing, revalidated MaxConfigAge-100ms ago")
	fetches(n + 1)
	c.add(200 * time.Millisecond)
	refused("origin failing, revalidated MaxConfigAge+100ms ago")
}

// TestResultsCache: JSON and MessagePack are cached apart, per max-age.
func TestResultsCache(t *testing.T) {
	f := &fakeOrigin{}
	h, c := start(t, f, nil)
	ctx := context.Background()
	j, err := h.Results(ctx, "p1", false)
	if err != nil || j.ETag != `"r1"` || !strings.Contains(string(j.Body), `"accept":"application/json"`) || j.CacheControl == "" {
		t.Fatalf("json results = %+v, %v", j, err)
	}
	m, err := h.Results(ctx, "p1", true)
	if err != nil || !strings.Contains(string(m.Body), `"accept":"application/msgpack"`) {
		t.Fatalf("msgpack results = %+v, %v", m, err)
	}
	h.Results(ctx, "p1", false)
	if n := f.results.Load(); n != 2 {
		t.Fatalf("%d origin results requests, want 2 (one per format)", n)
	}
	c.add(10 * time.Second) // past max-age and stale-while-revalidate: a blocking refetch
	h.Results(ctx, "p1", false)
	if n := f.results.Load(); n != 3 {
		t.Fatalf("%d origin results requests after expiry, want 3", n)
	}
}

// TestIngestRetryThenDeliver: 503s, and 401s (the edge's clock or key is
// wrong, which an operator fixes), are retried until the origin applies the
// batch; nothing is dead-lettered.
func TestIngestRetryThenDeliver(t *testing.T) {
	for _, status := range []int64{503, 401} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := &fakeOrigin{}
			f.ingestStatus.Store(status)
			h, _ := start(t, f, nil)
			for i := range 10 {
				if err := h.Submit(context.Background(), &shared.Vote{Poll: "p1", Voter: shared.VoterID{byte(i + 1)}, Choices: []uint8{0}, At: 1}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for h.Stats().Retries < 3 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			f.ingestStatus.Store(200)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := h.Stats()
			if f.votes.Load() != 10 || st.Votes != 10 || st.Retries < 3 || st.Receipt.Accepted != 10 || st.Poison != 0 {
				t.Fatalf("origin got %d votes; stats %+v: want 10 delivered after ≥3 retries, no poison", f.votes.Load(), st)
			}
			if err := h.Submit(context.Background(), &shared.Vote{Poll: "p1", Voter: shared.VoterID{99}, Choices: []uint8{0}, At: 1}); shared.ErrorCode(err) != shared.EUNAVAILABLE {
				t.Fatalf("Submit after Close: %v, want EUNAVAILABLE", err)
			}
		})
	}
}

// TestPoisonBatch: a 4xx is not retried; the batch is counted as poison.
func TestPoisonBatch(t *testing.T) {
	f := &fakeOrigin{}
	f.ingestStatus.Store(400)
	h, _ := start(t, f, nil)
	h.Submit(context.Background(), &shared.Vote{Poll: "p1", Voter: shared.VoterID{1}, Choices: []uint8{0}, At: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := h.Stats()
	if st.Poison != 1 || st.PoisonVotes != 1 || st.Retries != 0 || f.ingests.Load() != 1 {
		t.Fatalf("stats %+v, ingests %d: want 1 poison batch, no retry", st, f.ingests.Load())
	}
}

// TestCloseGivesUp: with the origin failing, Close returns when its context
// ends and counts the votes it could not deliver.
func TestCloseGivesUp(t *testing.T) {
	f := &fakeOrigin{}
	f.ingestStatus.Store(500)
	h, _ := start(t, f, nil)
	for i := range 3 {
		h.Submit(context.Background(), &shared.Vote{Poll: "p1", Voter: shared.VoterID{byte(i + 1)}, Choices: []uint8{0}, At: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Close(ctx); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("Close = %v, want EUNAVAILABLE", err)
	}
	if st := h.Stats(); st.Undelivered != 3 {
		t.Fatalf("stats %+v: want 3 undelivered", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]originhost.Config{
		"no origin":  {IngestKey: key},
		"ftp origin": {OriginURL: "ftp://x", IngestKey: key},
		"short key":  {OriginURL: "http://127.0.0.1:1", IngestKey: sign.Key{ID: "k", Secret: []byte("short")}},
	} {
		if _, err := originhost.New(cfg); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
}
