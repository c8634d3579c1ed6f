package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// These tests run the real origin binary over loopback HTTP against a real
// redis-server (and a real 3-node Redis Cluster).

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128},
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
}

// redisCLI runs redis-cli against addr and returns its trimmed output.
func redisCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// scriptCalls is how many scripts Redis has run (EVAL, EVALSHA, FCALL).
func scriptCalls(t *testing.T, addr string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(redisCLI(t, addr, "INFO", "commandstats"), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_eval", "cmdstat_evalsha", "cmdstat_fcall", "cmdstat_evalsha_ro", "cmdstat_eval_ro":
			calls, _, _ := strings.Cut(rest, ",")
			v, _ := strconv.Atoi(calls)
			n += v
		}
	}
	return n
}

func admin(o *origintest.Origin) *adminclient.Client { return adminclient.New(o.URL, o.AdminToken) }

func createOpenPoll(t *testing.T, o *origintest.Origin, id string, options int) {
	t.Helper()
	req := &adminclient.CreateRequest{Poll: shared.Poll{ID: id, Title: "Poll " + id, Kind: shared.KindSingle,
		State: shared.StateDraft, Visibility: shared.VisibilityLive}, ExpectedVoters: 10000}
	for i := 0; i < options; i++ {
		req.Options = append(req.Options, shared.Option{Label: "option " + strconv.Itoa(i)})
	}
	ctx := context.Background()
	if _, err := admin(o).CreatePoll(ctx, req); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	if _, err := admin(o).Open(ctx, id); err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
}

func randomVoter() shared.VoterID {
	var v shared.VoterID
	_, _ = rand.Read(v[:])
	return v
}

// post sends a signed batch body and returns status, body.
func post(o *origintest.Origin, key sign.Key, body []byte, ts time.Time, contentType string) (int, []byte, error) {
	req, err := http.NewRequest("POST", o.URL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	sig := sign.Sign(key, ts, body)
	req.Header.Set("Content-Type", contentType)
	sig.SetHeaders(req.Header.Set)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// postDeclaringSize sends an ingest request whose headers declare a body of
// n bytes, without sending the body: the origin refuses an oversized body
// from its Content-Length. Sending the whole body would race the refusal
// (the origin answers and closes while the client is still writing, and the
// client may see a broken pipe instead of the answer).
func postDeclaringSize(o *origintest.Origin, n int, contentType string) (int, []byte, error) {
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(o.URL, "http://"), 10*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /v1/ingest HTTP/1.1\r\nHost: origin\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", contentType, n); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func send(o *origintest.Origin, b *shared.Batch) (*shared.Receipt, error) {
	body, err := shared.MarshalBatch(b)
	if err != nil {
		return nil, err
	}
	status, resp, err := post(o, o.IngestKey, body, time.Now(), shared.ContentTypeMsgpack)
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, fmt.Errorf("ingest: %d %s", status, resp)
	}
	var r shared.Receipt
	if err := shared.UnmarshalReceipt(resp, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func mustSend(t *testing.T, o *origintest.Origin, b *shared.Batch) *shared.Receipt {
	t.Helper()
	r, err := send(o, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newBatch(poll string, voters []shared.VoterID, choice func(shared.VoterID) uint8) *shared.Batch {
	b := &shared.Batch{Edge: "e2e"}
	_, _ = rand.Read(b.ID[:])
	at := time.Now().UnixMilli()
	for _, v := range voters {
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: v, Choices: []uint8{choice(v)}, At: at})
	}
	return b
}

func choiceOf(v shared.VoterID) uint8 { return v[15] % 4 }

// publicResults reads GET /v1/polls/{id}/results after the cache's freshness.
func publicResults(t *testing.T, o *origintest.Origin, id string) (counts []uint64, voters uint64) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // past the origin's 250 ms freshness
	resp, err := httpClient.Get(o.URL + "/v1/polls/" + id + "/results")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Counts []uint64 `json:"counts"`
		Voters uint64   `json:"voters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("results: %d %v", resp.StatusCode, err)
	}
	return r.Counts, r.Voters
}

// checkExact asserts the poll's counts equal one vote per distinct voter.
func checkExact(t *testing.T, o *origintest.Origin, id string, voters map[shared.VoterID]bool) {
	t.Helper()
	want := make([]uint64, 4)
	for v := range voters {
		want[choiceOf(v)]++
	}
	counts, n := publicResults(t, o, id)
	if n != uint64(len(voters)) || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("public results: voters %d counts %v; want %d %v", n, counts, len(voters), want)
	}
	r, err := admin(o).Results(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Voters != uint64(len(voters)) || fmt.Sprint(r.Counts) != fmt.Sprint(want) {
		t.Fatalf("admin results: voters %d counts %v; want %d %v", r.Voters, r.Counts, len(voters), want)
	}
}

// concurrentBatches sends 100 batches of 50 votes drawn from 1,000 shared
// voters, concurrently, spread over the given origins.
func concurrentBatches(t *testing.T, origins []*origintest.Origin, poll string) {
	t.Helper()
	pool := make([]shared.VoterID, 1000)
	for i := range pool {
		pool[i] = randomVoter()
	}
	distinct := map[shared.VoterID]bool{}
	batches := make([]*shared.Batch, 100)
	for i := range batches {
		vs := make([]shared.VoterID, 50)
		for j := range vs {
			vs[j] = pool[(i*37+j*101)%len(pool)]
			distinct[vs[j]] = true
		}
		batches[i] = newBatch(poll, vs, choiceOf)
	}
	var accepted, dups atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, len(batches))
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(origins[i%len(origins)], b)
			if err != nil {
				errs <- err
				return
			}
			accepted.Add(uint64(r.Accepted))
			dups.Add(uint64(r.Duplicate))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if accepted.Load() != uint64(len(distinct)) || accepted.Load()+dups.Load() != 100*50 {
		t.Fatalf("receipts: accepted %d duplicates %d; want %d and %d", accepted.Load(), dups.Load(), len(distinct), 100*50-len(distinct))
	}
	checkExact(t, origins[0], poll, distinct)
}

func runExactSuite(t *testing.T, redisURL string) {
	o := origintest.Start(t, redisURL)
	t.Run("100 concurrent batches sharing voters", func(t *testing.T) {
		createOpenPoll(t, o, "concurrent", 4)
		concurrentBatches(t, []*origintest.Origin{o}, "concurrent")
	})
	t.Run("same batch three times", func(t *testing.T) {
		createOpenPoll(t, o, "thrice", 4)
		voters := map[shared.VoterID]bool{}
		var vs []shared.VoterID
		for i := 0; i < 20; i++ {
			v := randomVoter()
			vs = append(vs, v)
			voters[v] = true
		}
		b := newBatch("thrice", vs, choiceOf)
		first := mustSend(t, o, b)
		if first.Accepted != 20 || first.Replayed {
			t.Fatalf("first delivery: %+v", first)
		}
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := send(o, b)
				if err != nil {
					t.Error(err)
					return
				}
				if !r.Replayed || r.Accepted != 20 {
					t.Errorf("redelivery: %+v", r)
				}
			}()
		}
		wg.Wait()
		checkExact(t, o, "thrice", voters)
	})
	t.Run("rejects per vote", func(t *testing.T) {
		createOpenPoll(t, o, "mixed", 4)
		good := randomVoter()
		b := newBatch("mixed", []shared.VoterID{good}, choiceOf)
		at := time.Now().UnixMilli()
		b.Votes = append(b.Votes,
			shared.Vote{Poll: "ghost", Voter: randomVoter(), Choices: []uint8{0}, At: at},
			shared.Vote{Poll: "mixed", Voter: randomVoter(), Choices: []uint8{9}, At: at})
		r := mustSend(t, o, b)
		if r.Accepted != 1 || r.Rejected[shared.ReasonIndex(shared.RejectUnknownPoll)] != 1 ||
			r.Rejected[shared.ReasonIndex(shared.RejectInvalidChoice)] != 1 {
			t.Fatalf("receipt %+v", r)
		}
		checkExact(t, o, "mixed", map[shared.VoterID]bool{good: true})
	})
}

func TestE2EExactSingleNode(t *testing.T) {
	skipShort(t)
	runExactSuite(t, redistest.Start(t).URL)
}

func TestE2EExactCluster(t *testing.T) {
	skipShort(t)
	runExactSuite(t, redistest.StartCluster(t).URL)
}

func TestE2ETwoOriginsOneRedis(t *testing.T) {
	skipShort(t)
	r := redistest.Start(t)
	a := origintest.Start(t, r.URL)
	b := origintest.StartWith(t, r.URL, origintest.Options{AdminToken: a.AdminToken, IngestKey: a.IngestKey})
	createOpenPoll(t, a, "shared", 4)
	concurrentBatches(t, []*origintest.Origin{a, b}, "shared")
	// The same batch through both origins at once is still counted once.
	vs := []shared.VoterID{randomVoter(), randomVoter()}
	batch := newBatch("shared", vs, choiceOf)
	var wg sync.WaitGroup
	var accepted atomic.Uint32
	for _, o := range []*origintest.Origin{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rc, err := send(o, batch); err != nil {
				t.Error(err)
			} else if !rc.Replayed {
				accepted.Add(rc.Accepted)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 2 {
		t.Fatalf("non-replayed receipts accepted %d votes, want 2", accepted.Load())
	}
}

func TestE2EBadInputLeavesRedisUntouched(t *testing.T) {
	skipShort(t)
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	createOpenPoll(t, o, "guarded", 4)
	body, err := shared.MarshalBatch(newBatch("guarded", []shared.VoterID{randomVoter(), randomVoter()}, choiceOf))
	if err != nil {
		t.Fatal(err)
	}
	dbsize := redisCLI(t, r.Addr, "DBSIZE")
	scripts := scriptCalls(t, r.Addr)
	now := time.Now()
	other := sign.Key{ID: "intruder", Secret: o.IngestKey.Secret}
	wrong := sign.Key{ID: o.IngestKey.ID, Secret: []byte(strings.Repeat("x", 32))}
	huge := bytes.Repeat([]byte{0x91}, shared.MaxBatchBytes+1)
	cases := []struct {
		name   string
		key    sign.Key
		body   []byte
		ts     time.Time
		ct     string
		status int
	}{
		{"truncated", o.IngestKey, body[:len(body)/2], now, shared.ContentTypeMsgpack, 400},
		{"garbage", o.IngestKey, []byte("GET / HTTP/1.1\r\n\r\n"), now, shared.ContentTypeMsgpack, 400},
		{"oversized", o.IngestKey, huge, now, shared.ContentTypeMsgpack, 413},
		{"bad signature", wrong, body, now, shared.ContentTypeMsgpack, 401},
		{"stale timestamp", o.IngestKey, body, now.Add(-time.Hour), shared.ContentTypeMsgpack, 401},
		{"unknown key id", other, body, now, shared.ContentTypeMsgpack, 401},
		{"wrong media type", o.IngestKey, body, now, "text/plain", 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var status int
			var resp []byte
			var err error
			if len(c.body) > shared.MaxBatchBytes {
				status, resp, err = postDeclaringSize(o, len(c.body), c.ct)
			} else {
				status, resp, err = post(o, c.key, c.body, c.ts, c.ct)
			}
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if status != c.status || json.Unmarshal(resp, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with a JSON error", status, resp, c.status)
			}
		})
	}
	if got := redisCLI(t, r.Addr, "DBSIZE"); got != dbsize {
		t.Fatalf("DBSIZE %s → %s", dbsize, got)
	}
	if got := scriptCalls(t, r.Addr); got != scripts {
		t.Fatalf("Redis ran %d scripts for bad input", got-scripts)
	}
	if _, n := publicResults(t, o, "guarded"); n != 0 {
		t.Fatalf("bad input counted %d voters", n)
	}
}

// TestE2EGracefulShutdown sends batches of fresh voters from several clients
// and stops the origin with SIGTERM mid-load: every batch acknowledged is
// counted and nothing else is.
func TestE2EGracefulShutdown(t *testing.T) {
	skipShort(t)
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	createOpenPoll(t, o, "drain", 4)
	var acknowledged atomic.Uint64
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				vs := make([]shared.VoterID, 200)
				for i := range vs {
					vs[i] = randomVoter()
				}
				sent.Add(1)
				rc, err := send(o, newBatch("drain", vs, choiceOf))
				if err != nil {
					continue // not acknowledged: the origin is going away
				}
				acknowledged.Add(uint64(rc.Accepted))
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	o.Signal(syscall.SIGTERM)
	code := o.Wait()
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("origin exited with %d after SIGTERM", code)
	}
	if acknowledged.Load() == 0 {
		t.Fatal("no batch was acknowledged before the shutdown")
	}
	o.Restart()
	_, voters := publicResults(t, o, "drain")
	if voters != acknowledged.Load() {
		t.Fatalf("counted %d voters, acknowledged %d (of %d batches sent)", voters, acknowledged.Load(), sent.Load())
	}
	t.Logf("%d batches sent, %d votes acknowledged and counted", sent.Load(), voters)
}

func TestE2EReadyzFollowsRedis(t *testing.T) {
	skipShort(t)
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	get := func(path string) int {
		resp, err := httpClient.Get(o.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/readyz"); s != 200 {
		t.Fatalf("readyz %d", s)
	}
	redisCLI(t, r.Addr, "SHUTDOWN", "NOSAVE")
	if s := get("/readyz"); s != 503 {
		t.Fatalf("readyz with Redis down: %d", s)
	}
	if s := get("/healthz"); s != 200 {
		t.Fatalf("healthz with Redis down: %d", s)
	}
}
