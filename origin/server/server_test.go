package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/memstore"
	"github.com/edgepoll/edgepoll/origin/server"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

const adminToken = "test-admin-token-0123456789"

var testKey = sign.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// countingStore wraps a Store and counts the calls the read cache and the
// ingest path care about.
type countingStore struct {
	origin.Store
	applies, snapshots, versions, polls atomic.Int64
	snapshotDelay                       time.Duration
}

func (c *countingStore) Apply(ctx context.Context, b *shared.Batch, w time.Duration) (*shared.Receipt, error) {
	c.applies.Add(1)
	return c.Store.Apply(ctx, b, w)
}

func (c *countingStore) Snapshot(ctx context.Context, id string) (*shared.Snapshot, error) {
	c.snapshots.Add(1)
	time.Sleep(c.snapshotDelay)
	return c.Store.Snapshot(ctx, id)
}

func (c *countingStore) SnapshotVersion(ctx context.Context, id string) (uint64, error) {
	c.versions.Add(1)
	return c.Store.SnapshotVersion(ctx, id)
}

func (c *countingStore) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	c.polls.Add(1)
	return c.Store.Poll(ctx, id)
}

type env struct {
	t      *testing.T
	store  *countingStore
	mem    *memstore.Store
	client *http.Client
	srv    *server.Server
	now    atomic.Int64 // unix nanoseconds of the server's clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mem := memstore.New()
	e := &env{t: t, mem: mem, store: &countingStore{Store: mem}}
	e.now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, e.now.Load()) }
	srv, err := server.New(server.Config{
		Store:      e.store,
		Verifier:   sign.NewVerifier([]sign.Key{testKey}, time.Minute, nil),
		AdminToken: adminToken,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		_ = ln.Close()
	})
	e.client = &http.Client{Transport: &http.Transport{
		DialContext:         func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
		MaxIdleConnsPerHost: 300,
	}}
	return e
}

func (e *env) advance(d time.Duration) { e.now.Add(int64(d)) }

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, body []byte, hdr map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://origin"+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{r.StatusCode, r.Header, b}
}

func (e *env) admin(method, path string, body any) resp {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.do(method, "/v1/admin"+path, b, map[string]string{
		"Authorization": "Bearer " + adminToken, "Content-Type": "application/json",
	})
}

func wantError(t *testing.T, r resp, status int, code shared.Code) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	}
	if body.Error.Code != string(code) || body.Error.Message == "" {
		t.Fatalf("error = %+v, want code %q with a message", body.Error, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q", ct)
	}
}

func (e *env) createPoll(id string, mutate func(*shared.Poll)) *shared.Poll {
	e.t.Helper()
	p := &shared.Poll{ID: id, Title: "Best colour?", Kind: shared.KindSingle, State: shared.StateOpen,
		Visibility: shared.VisibilityLive, Options: []shared.Option{{Label: "red"}, {Label: "green"}, {Label: "blue"}}}
	if mutate != nil {
		mutate(p)
	}
	r := e.admin("POST", "/polls", p)
	if r.status != 201 {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
	var got shared.Poll
	if err := json.Unmarshal(r.body, &got); err != nil {
		e.t.Fatal(err)
	}
	return &got
}

func voter(i int) shared.VoterID {
	var v shared.VoterID
	v[0] = 1
	v[12], v[13], v[14], v[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return v
}

func batch(poll string, voters []int, choice func(int) uint8) *shared.Batch {
	b := &shared.Batch{Edge: "test"}
	_, _ = rand.Read(b.ID[:])
	at := time.Now().UnixMilli()
	for _, v := range voters {
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: voter(v), Choices: []uint8{choice(v)}, At: at})
	}
	return b
}

func signedHeaders(k sign.Key, now time.Time, body []byte) map[string]string {
	sig := sign.Sign(k, now, body)
	return map[string]string{
		"Content-Type":       shared.ContentTypeMsgpack,
		sign.HeaderKeyID:     sig.KeyID,
		sign.HeaderTimestamp: strconv.FormatInt(sig.Timestamp, 10),
		sign.HeaderSignature: sig.MAC,
	}
}

func (e *env) ingest(b *shared.Batch) *shared.Receipt {
	e.t.Helper()
	body, err := shared.MarshalBatch(b)
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.do("POST", "/v1/ingest", body, signedHeaders(testKey, time.Now(), body))
	if r.status != 200 {
		e.t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != shared.ContentTypeMsgpack {
		e.t.Fatalf("receipt Content-Type %q", ct)
	}
	var rc shared.Receipt
	if err := shared.UnmarshalReceipt(r.body, &rc); err != nil {
		e.t.Fatal(err)
	}
	return &rc
}

func TestIngestCountsAndReplays(t *testing.T) {
	e := newEnv(t)
	e.createPoll("p1", nil)
	b := batch("p1", []int{1, 2, 3, 4}, func(v int) uint8 { return uint8(v % 3) })
	b.Votes = append(b.Votes,
		shared.Vote{Poll: "nope", Voter: voter(9), Choices: []uint8{0}, At: time.Now().UnixMilli()},
		shared.Vote{Poll: "p1", Voter: voter(10), Choices: []uint8{7}, At: time.Now().UnixMilli()},
		shared.Vote{Poll: "p1", Voter: voter(1), Choices: []uint8{2}, At: time.Now().UnixMilli()},
	)
	rc := e.ingest(b)
	if rc.Accepted != 4 || rc.Duplicate != 1 || rc.Replayed || rc.Batch != b.ID ||
		rc.Rejected[shared.ReasonIndex(shared.RejectUnknownPoll)] != 1 ||
		rc.Rejected[shared.ReasonIndex(shared.RejectInvalidChoice)] != 1 {
		t.Fatalf("receipt = %+v", rc)
	}
	for i := 0; i < 2; i++ {
		again := e.ingest(b)
		if !again.Replayed || again.Accepted != 4 || again.Duplicate != 1 {
			t.Fatalf("replay receipt = %+v", again)
		}
	}
	snap, err := e.mem.Snapshot(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Voters != 4 || snap.Counts[0] != 1 || snap.Counts[1] != 2 || snap.Counts[2] != 1 {
		t.Fatalf("snapshot = %+v", snap)
	}
	m := e.do("GET", "/metrics", nil, nil)
	for _, want := range []string{
		"edgepoll_origin_votes_accepted_total 4",
		`edgepoll_origin_batches_total{result="replayed"} 2`,
		`edgepoll_origin_votes_rejected_total{reason="unknown_poll"} 1`,
		"edgepoll_origin_votes_duplicate_total 1",
		`edgepoll_origin_request_duration_seconds_count{route="ingest"} 3`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestIngestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.createPoll("p1", nil)
	good, err := shared.MarshalBatch(batch("p1", []int{1, 2}, func(int) uint8 { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("\x94\x01\xc4\x10this is not msgpack at all")
	huge := bytes.Repeat([]byte{0xc0}, shared.MaxBatchBytes+1)
	unknownKey := sign.Key{ID: "other", Secret: testKey.Secret}
	wrongSecret := sign.Key{ID: testKey.ID, Secret: []byte("ffffffffffffffffffffffffffffffff")}
	now := time.Now()
	cases := []struct {
		name   string
		method string
		body   []byte
		hdr    map[string]string
		status int
		code   shared.Code
	}{
		{"truncated", "POST", good[:len(good)-3], signedHeaders(testKey, now, good[:len(good)-3]), 400, shared.EINVALID},
		{"garbage", "POST", garbage, signedHeaders(testKey, now, garbage), 400, shared.EINVALID},
		{"empty", "POST", nil, signedHeaders(testKey, now, nil), 400, shared.EINVALID},
		{"oversized", "POST", huge, signedHeaders(testKey, now, huge), 413, shared.ETOOLARGE},
		{"bad signature", "POST", good, signedHeaders(wrongSecret, now, good), 401, shared.EUNAUTHORIZED},
		{"signature of other body", "POST", good, signedHeaders(testKey, now, garbage), 401, shared.EUNAUTHORIZED},
		{"stale timestamp", "POST", good, signedHeaders(testKey, now.Add(-2*time.Minute), good), 401, shared.EUNAUTHORIZED},
		{"future timestamp", "POST", good, signedHeaders(testKey, now.Add(2*time.Minute), good), 401, shared.EUNAUTHORIZED},
		{"unknown key id", "POST", good, signedHeaders(unknownKey, now, good), 401, shared.EUNAUTHORIZED},
		{"no signature", "POST", good, map[string]string{"Content-Type": shared.ContentTypeMsgpack}, 401, shared.EUNAUTHORIZED},
		{"wrong content type", "POST", good, func() map[string]string {
			h := signedHeaders(testKey, now, good)
			h["Content-Type"] = "application/json"
			return h
		}(), 415, shared.EUNSUPPORTED},
		{"GET", "GET", nil, nil, 405, shared.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, "/v1/ingest", c.body, c.hdr)
			wantError(t, r, c.status, c.code)
			if n := e.store.applies.Load(); n != 0 {
				t.Fatalf("store.Apply called %d times", n)
			}
		})
	}
	snap, _ := e.mem.Snapshot(context.Background(), "p1")
	if snap.Voters != 0 {
		t.Fatalf("bad input changed the store: %+v", snap)
	}
}

func TestReadPollAndResults(t *testing.T) {
	e := newEnv(t)
	e.createPoll("p1", nil)
	e.ingest(batch("p1", []int{1, 2, 3}, func(v int) uint8 { return uint8(v % 2) }))

	r := e.do("GET", "/v1/polls/p1", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" ||
		r.header.Get("Cache-Control") != "public, max-age=3, stale-while-revalidate=5" ||
		r.header.Get("Vary") != "Accept" || r.header.Get("ETag") == "" {
		t.Fatalf("poll: %d %v %s", r.status, r.header, r.body)
	}
	var p shared.Poll
	if err := json.Unmarshal(r.body, &p); err != nil || p.ID != "p1" || len(p.Options) != 3 {
		t.Fatalf("poll body %s (%v)", r.body, err)
	}
	rm := e.do("GET", "/v1/polls/p1", nil, map[string]string{"Accept": "application/msgpack"})
	var pm shared.Poll
	if err := shared.UnmarshalPoll(rm.body, &pm); err != nil || pm.ID != "p1" || rm.header.Get("ETag") == r.header.Get("ETag") {
		t.Fatalf("msgpack poll: %v %v", err, rm.header)
	}
	nm := e.do("GET", "/v1/polls/p1", nil, map[string]string{"If-None-Match": r.header.Get("ETag")})
	if nm.status != 304 || len(nm.body) != 0 || nm.header.Get("ETag") != r.header.Get("ETag") {
		t.Fatalf("If-None-Match: %d %q", nm.status, nm.body)
	}

	res := e.do("GET", "/v1/polls/p1/results", nil, nil)
	if res.status != 200 || res.header.Get("Cache-Control") != "public, max-age=1, stale-while-revalidate=5" || res.header.Get("Vary") != "Accept" {
		t.Fatalf("results: %d %v %s", res.status, res.header, res.body)
	}
	var js struct {
		Poll        string   `json:"poll"`
		Version     uint64   `json:"version"`
		Counts      []uint64 `json:"counts"`
		Total       uint64   `json:"total"`
		Voters      uint64   `json:"voters"`
		GeneratedAt string   `json:"generated_at"`
	}
	if err := json.Unmarshal(res.body, &js); err != nil {
		t.Fatalf("results JSON %s: %v", res.body, err)
	}
	if js.Poll != "p1" || js.Voters != 3 || js.Total != 3 || len(js.Counts) != 3 || js.Counts[0] != 1 || js.Counts[1] != 2 {
		t.Fatalf("results = %+v", js)
	}
	if _, err := time.Parse(time.RFC3339Nano, js.GeneratedAt); err != nil {
		t.Fatalf("generated_at %q: %v", js.GeneratedAt, err)
	}
	resm := e.do("GET", "/v1/polls/p1/results", nil, map[string]string{"Accept": "application/msgpack"})
	var snap shared.Snapshot
	if err := shared.UnmarshalSnapshot(resm.body, &snap); err != nil || snap.Voters != 3 || snap.Version != js.Version {
		t.Fatalf("msgpack results %+v %v", snap, err)
	}
	if nm := e.do("GET", "/v1/polls/p1/results", nil, map[string]string{"If-None-Match": `"x", ` + res.header.Get("ETag")}); nm.status != 304 {
		t.Fatalf("results If-None-Match: %d", nm.status)
	}

	// A new vote changes the snapshot once the freshness period is over.
	e.ingest(batch("p1", []int{4}, func(int) uint8 { return 2 }))
	e.advance(time.Second)
	res2 := e.do("GET", "/v1/polls/p1/results", nil, map[string]string{"If-None-Match": res.header.Get("ETag")})
	if res2.status != 200 || res2.header.Get("ETag") == res.header.Get("ETag") || !bytes.Contains(res2.body, []byte(`"voters":4`)) {
		t.Fatalf("after a vote: %d %s", res2.status, res2.body)
	}

	wantError(t, e.do("GET", "/v1/polls/nope", nil, nil), 404, shared.ENOTFOUND)
	wantError(t, e.do("GET", "/v1/polls/nope/results", nil, nil), 404, shared.ENOTFOUND)
	wantError(t, e.do("GET", "/v1/polls/bad%20id", nil, nil), 404, shared.ENOTFOUND)
	wantError(t, e.do("POST", "/v1/polls/p1", nil, nil), 405, shared.EINVALID)
	wantError(t, e.do("GET", "/nowhere", nil, nil), 404, shared.ENOTFOUND)
}

func TestResultsHiddenUntilClose(t *testing.T) {
	e := newEnv(t)
	e.createPoll("secret", func(p *shared.Poll) { p.Visibility = shared.VisibilityAfterClose })
	wantError(t, e.do("GET", "/v1/polls/secret/results", nil, nil), 403, shared.EFORBIDDEN)
	if r := e.admin("POST", "/polls/secret/close", nil); r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	// The close is announced: results stay hidden until it takes effect.
	wantError(t, e.do("GET", "/v1/polls/secret/results", nil, nil), 403, shared.EFORBIDDEN)
	e.advance(shared.CloseLead)
	if r := e.do("GET", "/v1/polls/secret/results", nil, nil); r.status != 200 {
		t.Fatalf("after close: %d %s", r.status, r.body)
	}
}

func TestSnapshotCoalescing(t *testing.T) {
	e := newEnv(t)
	e.createPoll("hot", nil)
	e.ingest(batch("hot", []int{1, 2}, func(int) uint8 { return 1 }))
	// A slow snapshot makes the 200 readers overlap for sure.
	e.store.snapshotDelay = 50 * time.Millisecond
	const readers = 200
	var wg sync.WaitGroup
	var bad atomic.Int64
	start := make(chan struct{})
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := e.do("GET", "/v1/polls/hot/results", nil, nil)
			if r.status != 200 || !bytes.Contains(r.body, []byte(`"voters":2`)) {
				bad.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d readers got a bad answer", bad.Load())
	}
	if n := e.store.snapshots.Load(); n != 1 {
		t.Fatalf("%d concurrent readers caused %d Snapshot calls, want 1", readers, n)
	}

	// After the freshness period, an unchanged version costs one cheap
	// version check and no recomputation.
	e.advance(time.Second)
	for i := 0; i < 5; i++ {
		e.do("GET", "/v1/polls/hot/results", nil, nil)
	}
	if n, v := e.store.snapshots.Load(), e.store.versions.Load(); n != 1 || v != 1 {
		t.Fatalf("after expiry: %d snapshots, %d version checks; want 1 and 1", n, v)
	}
	// A changed version is recomputed once.
	e.ingest(batch("hot", []int{3}, func(int) uint8 { return 0 }))
	e.advance(time.Second)
	for i := 0; i < 5; i++ {
		e.do("GET", "/v1/polls/hot/results", nil, nil)
	}
	if n := e.store.snapshots.Load(); n != 2 {
		t.Fatalf("after a vote: %d snapshots, want 2", n)
	}
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	for name, hdr := range map[string]map[string]string{
		"none":   nil,
		"wrong":  {"Authorization": "Bearer " + adminToken + "x"},
		"short":  {"Authorization": "Bearer x"},
		"basic":  {"Authorization": "Basic " + adminToken},
		"prefix": {"Authorization": "Bearer " + adminToken[:len(adminToken)-1]},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.do("GET", "/v1/admin/polls", nil, hdr), 401, shared.EUNAUTHORIZED)
			wantError(t, e.do("POST", "/v1/admin/polls", []byte(`{}`), hdr), 401, shared.EUNAUTHORIZED)
		})
	}
	if r := e.do("GET", "/v1/admin/polls", nil, map[string]string{"Authorization": "bearer " + adminToken}); r.status != 200 {
		t.Fatalf("lower-case scheme: %d", r.status)
	}
}

func TestAdminLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.admin("POST", "/polls", `{"id":"q","title":"Q?","options":[{"label":"a"},{"label":"b"}],"expected_voters":1000}`)
	if r.status != 201 || r.header.Get("Location") != "/v1/admin/polls/q" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var p shared.Poll
	_ = json.Unmarshal(r.body, &p)
	if p.State != shared.StateDraft || p.Kind != shared.KindSingle || p.Visibility != shared.VisibilityLive || p.Version != 1 {
		t.Fatalf("defaults: %+v", p)
	}
	wantError(t, e.admin("POST", "/polls", `{"id":"q","title":"Q?","options":[{"label":"a"},{"label":"b"}]}`), 409, shared.ECONFLICT)
	for name, body := range map[string]string{
		"unknown field": `{"id":"z","title":"Z","options":[{"label":"a"},{"label":"b"}],"colour":"red"}`,
		"syntax":        `{"id":"z",`,
		"type":          `{"id":7}`,
		"trailing":      `{"id":"z","title":"Z","options":[{"label":"a"},{"label":"b"}]} {}`,
		"empty":         ``,
		"one option":    `{"id":"z","title":"Z","options":[{"label":"a"}]}`,
		"bad id":        `{"id":"a b","title":"Z","options":[{"label":"a"},{"label":"b"}]}`,
		"negative":      `{"id":"z","title":"Z","options":[{"label":"a"},{"label":"b"}],"expected_voters":-1}`,
	} {
		t.Run(name, func(t *testing.T) { wantError(t, e.admin("POST", "/polls", body), 400, shared.EINVALID) })
	}

	if r := e.admin("PATCH", "/polls/q", `{"title":"New?"}`); r.status != 200 || !bytes.Contains(r.body, []byte(`"New?"`)) {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	wantError(t, e.admin("PATCH", "/polls/q", `{"state":"open"}`), 400, shared.EINVALID)
	wantError(t, e.admin("PATCH", "/polls/nope", `{"title":"x"}`), 404, shared.ENOTFOUND)

	// A draft poll rejects votes; an open one counts them.
	rc := e.ingest(batch("q", []int{1}, func(int) uint8 { return 0 }))
	if rc.Rejected[shared.ReasonIndex(shared.RejectNotOpen)] != 1 {
		t.Fatalf("draft poll receipt %+v", rc)
	}
	if r := e.admin("POST", "/polls/q/open", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"state":"open"`)) {
		t.Fatalf("open: %d %s", r.status, r.body)
	}
	e.ingest(batch("q", []int{1, 2, 3}, func(v int) uint8 { return uint8(v % 2) }))
	wantError(t, e.admin("PATCH", "/polls/q", `{"options":[{"label":"x"},{"label":"y"}]}`), 409, shared.ECONFLICT)

	r = e.admin("GET", "/polls/q/results", nil)
	var res origin.Results
	if err := json.Unmarshal(r.body, &res); err != nil || res.Voters != 3 || res.Options[1] != "b" || res.Counts[1] != 2 {
		t.Fatalf("admin results %s", r.body)
	}
	r = e.admin("GET", "/polls/q/export?data=results&format=csv", nil)
	if r.status != 200 || string(r.body) != "option,label,votes\n0,a,1\n1,b,2\n" {
		t.Fatalf("results csv: %d %q", r.status, r.body)
	}
	r = e.admin("GET", "/polls/q/export?data=ledger&format=csv", nil)
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); r.status != 200 || len(lines) != 4 || lines[0] != "voter_key,choices,batch" {
		t.Fatalf("ledger csv: %d %q", r.status, r.body)
	}
	r = e.admin("GET", "/polls/q/export?data=ledger&format=json", nil)
	var ledger struct {
		Poll    string `json:"poll"`
		Ballots []struct {
			VoterKey string  `json:"voter_key"`
			Choices  []uint8 `json:"choices"`
		} `json:"ballots"`
	}
	if err := json.Unmarshal(r.body, &ledger); err != nil || len(ledger.Ballots) != 3 || ledger.Ballots[0].VoterKey == "" {
		t.Fatalf("ledger json %q: %v", r.body, err)
	}
	r = e.admin("GET", "/polls/q/export?data=results&format=json", nil)
	if !json.Valid(r.body) || !bytes.Contains(r.body, []byte(`"votes":2`)) {
		t.Fatalf("results json %q", r.body)
	}
	wantError(t, e.admin("GET", "/polls/q/export?data=secrets", nil), 400, shared.EINVALID)
	wantError(t, e.admin("GET", "/polls/q/export?format=xml", nil), 400, shared.EINVALID)
	wantError(t, e.admin("GET", "/polls/nope/export?data=ledger", nil), 404, shared.ENOTFOUND)

	if r := e.admin("GET", "/stats", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"voters":3`)) {
		t.Fatalf("stats: %s", r.body)
	}
	if r := e.admin("POST", "/polls/q/close?now=true", nil); !bytes.Contains(r.body, []byte(`"state":"closed"`)) {
		t.Fatalf("close: %s", r.body)
	}
	if r := e.admin("POST", "/polls/q/reset", nil); r.status != 200 {
		t.Fatalf("reset: %d", r.status)
	}
	if r := e.admin("GET", "/polls/q/results", nil); !bytes.Contains(r.body, []byte(`"voters":0`)) {
		t.Fatalf("after reset %s", r.body)
	}
	r = e.admin("GET", "/polls", nil)
	var list server.PollList
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Polls) != 1 || list.Polls[0].ID != "q" {
		t.Fatalf("list %s", r.body)
	}
	if r := e.admin("DELETE", "/polls/q", nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	wantError(t, e.admin("GET", "/polls/q", nil), 404, shared.ENOTFOUND)
	wantError(t, e.admin("DELETE", "/polls/q", nil), 404, shared.ENOTFOUND)
	wantError(t, e.do("GET", "/v1/polls/q", nil, nil), 404, shared.ENOTFOUND)
	wantError(t, e.admin("PUT", "/polls/q", nil), 405, shared.EINVALID)
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", nil, nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := e.do("GET", "/readyz", nil, nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	_ = e.mem.Close()
	wantError(t, e.do("GET", "/readyz", nil, nil), 503, shared.EUNAVAILABLE)
	if r := e.do("GET", "/healthz", nil, nil); r.status != 200 {
		t.Fatalf("healthz with the store down: %d", r.status)
	}
	m := e.do("GET", "/metrics", nil, nil)
	if !bytes.Contains(m.body, []byte(`edgepoll_origin_redis_errors_total{op="ping"} 1`)) {
		t.Fatalf("metrics lack the ping error:\n%s", m.body)
	}
}

func TestNewValidates(t *testing.T) {
	v := sign.NewVerifier([]sign.Key{testKey}, 0, nil)
	for name, cfg := range map[string]server.Config{
		"no store":    {Verifier: v, AdminToken: adminToken},
		"no verifier": {Store: memstore.New(), AdminToken: adminToken},
		"short token": {Store: memstore.New(), Verifier: v, AdminToken: "short"},
	} {
		if _, err := server.New(cfg); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// nopStore answers every batch as fully accepted, so the benchmark measures
// the HTTP, signature and decoding path only.
type nopStore struct{ origin.Store }

func (nopStore) Apply(_ context.Context, b *shared.Batch, _ time.Duration) (*shared.Receipt, error) {
	return &shared.Receipt{Batch: b.ID, Accepted: uint32(len(b.Votes))}, nil
}

func BenchmarkIngestHandler(b *testing.B) {
	srv, err := server.New(server.Config{
		Store:      nopStore{memstore.New()},
		Verifier:   sign.NewVerifier([]sign.Key{testKey}, time.Minute, nil),
		AdminToken: adminToken,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	voters := make([]int, 500)
	for i := range voters {
		voters[i] = i
	}
	body, err := shared.MarshalBatch(batch("bench", voters, func(v int) uint8 { return uint8(v % 4) }))
	if err != nil {
		b.Fatal(err)
	}
	hdr := signedHeaders(testKey, time.Now(), body)
	h := srv.Handler()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/ingest")
		for k, v := range hdr {
			ctx.Request.Header.Set(k, v)
		}
		ctx.Request.SetBodyRaw(body)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	b.ReportMetric(float64(b.N*len(voters))/b.Elapsed().Seconds(), "votes/s")
}
