package rehearse_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin/rehearse"
)

// fakeEdge answers every route at once: a fresh token for GET, 202 with
// the token's voter id as receipt for POST. With record set it keeps the
// peer addresses it saw.
type fakeEdge struct {
	url    string
	votes  atomic.Int64
	record bool
	mu     sync.Mutex
	peers  map[string]bool
}

func startFake(tb testing.TB, kind string, record bool) *fakeEdge {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeEdge{url: "http://" + ln.Addr().String(), record: record, peers: map[string]bool{}}
	head := `{"poll":{"id":"p","options":[{"label":"A"},{"label":"B"},{"label":"C"}],"kind":"single","state":"open"},"token":"`
	if kind == "multi" {
		head = `{"poll":{"id":"p","options":[{"label":"A"},{"label":"B"},{"label":"C"}],"kind":"multi","max_choices":2,"state":"open"},"token":"`
	}
	var voters atomic.Uint64
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetContentType("application/json")
		if f.record {
			f.mu.Lock()
			f.peers[c.RemoteIP().String()] = true
			f.mu.Unlock()
		}
		if c.IsGet() {
			var id [32]byte
			binary.BigEndian.PutUint64(id[:], voters.Add(1))
			c.SetBodyString(head + base64.RawURLEncoding.EncodeToString(id[:]) + `"}`)
			return
		}
		f.votes.Add(1)
		body := c.PostBody()
		i := bytes.Index(body, []byte(`"token":"`))
		id := make([]byte, 32)
		if i < 0 || len(body) < i+9+43 {
			c.SetStatusCode(401)
			c.SetBodyString(`{"error":{"code":"unauthorized","message":"no token"}}`)
			return
		}
		if _, err := base64.RawURLEncoding.Decode(id, body[i+9:i+9+43]); err != nil {
			c.SetStatusCode(401)
			c.SetBodyString(`{"error":{"code":"unauthorized","message":"no token"}}`)
			return
		}
		c.SetStatusCode(202)
		c.SetBodyString(`{"status":"accepted","poll":"p","receipt":"` + hex.EncodeToString(id[:16]) + `"}`)
	}}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	return f
}

func TestRehearseFakeEdge(t *testing.T) {
	for _, kind := range []string{"single", "multi"} {
		t.Run(kind, func(t *testing.T) {
			f := startFake(t, kind, false)
			rep, err := rehearse.Run(context.Background(), rehearse.Config{
				Edge: f.url, Poll: "p", Concurrency: 8, Voters: 400, Weights: []float64{5, 3, 2}, RepeatShare: 0.1,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Voters != 400 || rep.Tokens["200"] != 400 || rep.Votes["202"] != 400 || rep.Acknowledged != 400 {
				t.Fatalf("report: %+v", rep)
			}
			if rep.Repeats["202"] == 0 || rep.Sources != 254 || rep.Kind != kind {
				t.Fatalf("report: %+v", rep)
			}
		})
	}
}

func TestRehearseOpenModel(t *testing.T) {
	f := startFake(t, "single", false)
	rep, err := rehearse.Run(context.Background(), rehearse.Config{
		Edge: f.url, Poll: "p", Rate: 500, Duration: 500 * time.Millisecond, BadShare: 0.2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Voters == 0 || rep.Mode != "rate" || rep.Votes["202"]+rep.Bad["202"]+rep.Bad["401"] != f.votes.Load() {
		t.Fatalf("report %+v, edge saw %d votes", rep, f.votes.Load())
	}
	if len(rep.Bad) == 0 {
		t.Fatalf("no bad input sent: %+v", rep)
	}
}

func TestRehearseSpreadsSourceAddresses(t *testing.T) {
	f := startFake(t, "single", true)
	if _, err := rehearse.Run(context.Background(), rehearse.Config{Edge: f.url, Poll: "p", Concurrency: 16, Voters: 600}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	n := len(f.peers)
	f.mu.Unlock()
	if n != 254 {
		t.Fatalf("edge saw %d client addresses, want 254", n)
	}
	if got := rehearse.SourceAddresses("http://10.1.2.3:8788"); got != 1 {
		t.Fatalf("non-loopback edge: %d source addresses, want 1", got)
	}
	if got := rehearse.SourceAddresses("http://127.0.0.1:8788"); got != 254 {
		t.Fatalf("loopback edge: %d source addresses, want 254", got)
	}
}

func TestRehearseBadConfig(t *testing.T) {
	for _, c := range []rehearse.Config{
		{Edge: "ftp://x", Poll: "p", Rate: 1},
		{Edge: "http://127.0.0.1:1", Poll: "p"},
		{Edge: "http://127.0.0.1:1", Poll: "p", Rate: 1, Concurrency: 1},
		{Edge: "http://127.0.0.1:1", Poll: "bad id", Rate: 1},
		{Edge: "http://127.0.0.1:1", Poll: "p", Rate: 1, RepeatShare: 2},
	} {
		if _, err := rehearse.Run(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// BenchmarkCeiling measures the tool's own ceiling: voters (token + vote)
// against a trivial in-process server, closed model, 256 in flight.
//
//	go test -run '^$' -bench Ceiling -benchtime 200000x ./origin/rehearse
func BenchmarkCeiling(b *testing.B) {
	f := startFake(b, "single", false)
	b.ResetTimer()
	rep, err := rehearse.Run(context.Background(), rehearse.Config{Edge: f.url, Poll: "p", Concurrency: 256, Voters: int64(b.N)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.VotesPerSecond, "votes/s")
	b.ReportMetric(rep.VoteLatency.P99, "p99-ms")
}
