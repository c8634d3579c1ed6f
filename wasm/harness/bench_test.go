package harness_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/benchfix"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
)

// BenchmarkVotePipeline measures one vote by a distinct voter through the
// edge pipeline (parse, token check, validate, rate-limit, dedupe, encode,
// hand-off to a no-op Submit): natively, and through the wazero guest via
// the harness's net/http adapter, with the default time budget (the
// instrumented countdown), without one, and with wazero's own checks.
// make bench-wasm compares them.
func BenchmarkVotePipeline(b *testing.B) {
	b.Run("native", func(b *testing.B) {
		benchVotes(b, edge.New(benchfix.Config(), benchfix.NewHost()))
	})
	for _, c := range []struct {
		name         string
		noBudget     bool
		wazeroBudget bool
		toolchain    string
	}{{"wasm", false, false, wasmtest.Go}, {"wasm-nobudget", true, false, wasmtest.Go}, {"wasm-wazerobudget", false, true, wasmtest.Go},
		{"tinygo", false, false, wasmtest.TinyGo}, {"tinygo-nobudget", true, false, wasmtest.TinyGo}} {
		b.Run(c.name, func(b *testing.B) {
			module := wasmtest.BuildWith(b, c.toolchain, wasmtest.EdgeGuest, "")
			h, err := harness.New(context.Background(), module, benchfix.NewHost(),
				harness.Config{Instances: 1, Env: benchfix.Lookup, NoBudget: c.noBudget, WazeroBudget: c.wazeroBudget, CacheDir: "off"})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			benchVotes(b, h)
		})
	}
}

func benchVotes(b *testing.B, h http.Handler) {
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = benchfix.VoteBody(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/polls/"+benchfix.PollID+"/votes", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("vote %d: status %d %s", i, rec.Code, rec.Body)
		}
	}
}

// BenchmarkRefusedFlood is one flooding address's vote refused at the
// per-address limit: what each request of a flood costs the harness.
func BenchmarkRefusedFlood(b *testing.B) {
	env := func(k string) (string, bool) {
		if k == "RATE_IP_VOTES" {
			return "1/h:1", true
		}
		return benchfix.Lookup(k)
	}
	module := wasmtest.Build(b, wasmtest.EdgeGuest, "")
	h, err := harness.New(context.Background(), module, benchfix.NewHost(),
		harness.Config{Instances: 1, Env: env, CacheDir: "off"})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	body := benchfix.VoteBody(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, "/v1/polls/"+benchfix.PollID+"/votes", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if want := http.StatusTooManyRequests; i > 0 && rec.Code != want {
			b.Fatalf("request %d: status %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
}
