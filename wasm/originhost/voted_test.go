package originhost

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var votedKeyRing = sign.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// votedOrigin answers GET /v1/polls/p1/voters/{hex} the way origin/server
// does: a signature over sign.RequestBody checked first, then 404 for an
// unknown poll, then {"counted":…}.
type votedOrigin struct {
	verifier *sign.Verifier
	counted  sync.Map      // voter hex → true when counted in p1
	status   atomic.Int64  // when non-zero, every answer is this status
	gate     chan struct{} // when non-nil, answers wait for it to close
	requests atomic.Int64
}

func (o *votedOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	if o.gate != nil {
		<-o.gate
	}
	if err := o.verifier.Verify(r.Header.Get(sign.HeaderKeyID), r.Header.Get(sign.HeaderTimestamp),
		r.Header.Get(sign.HeaderSignature), sign.RequestBody(r.Method, r.URL.Path)); err != nil || r.Method != http.MethodGet {
		http.Error(w, `{"error":{"code":"unauthorized","message":"bad signature"}}`, http.StatusUnauthorized)
		return
	}
	if st := o.status.Load(); st != 0 {
		http.Error(w, "failing", int(st))
		return
	}
	voter, ok := strings.CutPrefix(r.URL.Path, "/v1/polls/p1/voters/")
	if !ok {
		http.Error(w, `{"error":{"code":"not_found","message":"poll not found"}}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, ok := o.counted.Load(voter); ok {
		w.Write([]byte(`{"counted":true}`))
	} else {
		w.Write([]byte(`{"counted":false}`))
	}
}

type votedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *votedClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *votedClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func startVoted(t *testing.T, o *votedOrigin, key sign.Key) (*Host, *votedClock) {
	t.Helper()
	o.verifier = sign.NewVerifier([]sign.Key{votedKeyRing}, 0, nil)
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	c := &votedClock{t: time.Now()} // signatures carry this clock: keep it near real time
	h, err := New(Config{OriginURL: srv.URL + "/", IngestKey: key, Now: c.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, c
}

var (
	voterA = shared.VoterID{0xa1, 1, 2, 3}
	voterB = shared.VoterID{0xb2, 4, 5, 6}
)

// TestVoted: the signed check answers counted or not, 404 reads as
// ENOTFOUND and any other failure as EUNAVAILABLE; answers (ENOTFOUND
// included) are kept for edge.VotedCacheTTL, failures not at all.
func TestVoted(t *testing.T) {
	o := &votedOrigin{}
	o.counted.Store(hex.EncodeToString(voterA[:]), true)
	h, c := startVoted(t, o, votedKeyRing)
	ctx := context.Background()
	check := func(poll string, v shared.VoterID, want bool, wantCode shared.Code, wantRequests int64) {
		t.Helper()
		got, err := h.Voted(ctx, poll, v)
		if shared.ErrorCode(err) != wantCode || (err == nil && got != want) {
			t.Fatalf("Voted(%s, %x) = %v, %v; want %v, code %q", poll, v[:2], got, err, want, wantCode)
		}
		if n := o.requests.Load(); n != wantRequests {
			t.Fatalf("Voted(%s, %x): %d origin requests so far, want %d", poll, v[:2], n, wantRequests)
		}
	}
	check("p1", voterA, true, "", 1)
	check("p1", voterB, false, "", 2)
	check("p1", voterA, true, "", 2) // kept
	check("p1", voterB, false, "", 2)
	check("nope", voterA, false, shared.ENOTFOUND, 3)
	check("nope", voterA, false, shared.ENOTFOUND, 3) // kept too
	check("bad id!", voterA, false, shared.ENOTFOUND, 3)
	check("p1", shared.VoterID{}, false, shared.EINVALID, 3)

	c.add(edge.VotedCacheTTL)
	o.counted.Store(hex.EncodeToString(voterB[:]), true)
	check("p1", voterB, true, "", 4) // expired: asked again

	c.add(edge.VotedCacheTTL)
	o.status.Store(http.StatusInternalServerError)
	check("p1", voterA, false, shared.EUNAVAILABLE, 5)
	check("p1", voterA, false, shared.EUNAVAILABLE, 6) // a failure is not kept
	o.status.Store(0)
	check("p1", voterA, true, "", 7)
	if st := h.Stats(); st.VotedFetches != 7 {
		t.Fatalf("Stats().VotedFetches = %d, want 7", st.VotedFetches)
	}
}

// TestVotedWrongKey: an origin that refuses the edge's signature (401) is
// EUNAVAILABLE to the voter, never an answer.
func TestVotedWrongKey(t *testing.T) {
	o := &votedOrigin{}
	other := sign.Key{ID: "k1", Secret: []byte("another-secret-of-at-least-32-bytes!")}
	h, _ := startVoted(t, o, other)
	if _, err := h.Voted(context.Background(), "p1", voterA); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("Voted with a key the origin does not know: %v, want EUNAVAILABLE", err)
	}
}

// TestVotedCoalesced: concurrent checks of one voter share one origin
// request; a caller that gives up does not fail the others.
func TestVotedCoalesced(t *testing.T) {
	o := &votedOrigin{gate: make(chan struct{})}
	o.counted.Store(hex.EncodeToString(voterA[:]), true)
	h, _ := startVoted(t, o, votedKeyRing)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if counted, err := h.Voted(context.Background(), "p1", voterA); err != nil || !counted {
				errs <- err
			}
		}()
	}
	quitter, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := h.Voted(quitter, "p1", voterA); gaveUp <- err }()
	for h.voted.waiting("p1", voterA) != n+1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("cancelled check: %v, want EUNAVAILABLE", err)
	}
	close(o.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("coalesced check: %v, want counted", err)
	}
	if r := o.requests.Load(); r != 1 {
		t.Fatalf("%d concurrent checks made %d origin requests, want 1", n, r)
	}
}
