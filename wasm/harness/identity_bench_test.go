package harness_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/benchfix"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
)

// identityHandlers returns the native handler and the wazero guest (one
// instance, default time budget) over benchfix's host, for make
// bench-identity.
func identityHandlers(b *testing.B) map[string]http.Handler {
	module := wasmtest.Build(b, wasmtest.EdgeGuest, "")
	h, err := harness.New(context.Background(), module, benchfix.NewHost(), harness.Config{Instances: 1, Env: benchfix.Lookup, CacheDir: "off"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(context.Background()) })
	return map[string]http.Handler{"native": edge.New(benchfix.Config(), benchfix.NewHost()), "wasm": h}
}

// BenchmarkIdentityTokens measures one new voter token in each identity
// mode: open (GET /v1/polls/{id}), invite (POST a fresh code; the host
// redeems from memory, so the origin's round trip is not counted) and
// signed (POST a fresh Ed25519 JWT, verified in the edge).
func BenchmarkIdentityTokens(b *testing.B) {
	hs := identityHandlers(b)
	for _, where := range []string{"native", "wasm"} {
		h := hs[where]
		b.Run("open/"+where, func(b *testing.B) {
			for range b.N {
				req := httptest.NewRequest(http.MethodGet, "/v1/polls/"+benchfix.PollID, nil)
				serveOK(b, h, req, http.StatusOK)
			}
		})
		b.Run("invite/"+where, func(b *testing.B) {
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchfix.InviteBody()
			}
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, "/v1/polls/"+benchfix.PollInvite+"/token", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				serveOK(b, h, req, http.StatusOK)
			}
		})
		b.Run("signed/"+where, func(b *testing.B) {
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchfix.SignedBody(i)
			}
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, "/v1/polls/"+benchfix.PollSigned+"/token", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				serveOK(b, h, req, http.StatusOK)
			}
		})
	}
}

// BenchmarkIdentityVote measures one vote of a distinct voter in a poll of
// each identity mode: the vote path must cost the same in all three. The
// modes are mixed vote by vote (in a shuffled order), so load from
// elsewhere on the machine falls on all three alike; each mode's mean is reported as
// <mode>-ns/vote.
func BenchmarkIdentityVote(b *testing.B) {
	hs := identityHandlers(b)
	modes := []struct{ mode, id string }{{"open", benchfix.PollID}, {"invite", benchfix.PollInvite}, {"signed", benchfix.PollSigned}}
	for _, where := range []string{"native", "wasm"} {
		b.Run(where, func(b *testing.B) {
			// The modes in a shuffled order (fixed seed): a cost that recurs
			// every few votes falls on all three alike.
			order := make([]int, b.N)
			for i := range order {
				order[i] = i % 3
			}
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchfix.VoteBodyFor(modes[order[i]].id, i)
			}
			var spent [3]time.Duration
			var n [3]int
			b.ResetTimer()
			for i := range b.N {
				m := order[i]
				req := httptest.NewRequest(http.MethodPost, "/v1/polls/"+modes[m].id+"/votes", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				serveOK(b, hs[where], req, http.StatusAccepted)
				spent[m] += time.Since(start)
				n[m]++
			}
			for m := range modes {
				if n[m] > 0 {
					b.ReportMetric(float64(spent[m].Nanoseconds())/float64(n[m]), modes[m].mode+"-ns/vote")
				}
			}
		})
	}
}

func serveOK(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, rec.Code, rec.Body)
	}
}
