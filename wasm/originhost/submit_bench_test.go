package originhost_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
	"github.com/edgepoll/edgepoll/wasm/originhost"
)

// BenchmarkSubmit measures the vote hand-off as the edge sees it: 64
// goroutines per core each Submit distinct votes to a Host whose origin (an
// in-process fake) applies every batch. ns/op is wall time per vote at that
// concurrency, so with group commit it is the inverse of the hand-off's
// throughput. Each Submit returns after its batch's append and fsync in the
// spool (BenchmarkSpoolAppend measures those alone). batch-delay waits out
// the default 5 ms BatchDelay for company; submitters tells the host how
// many callers there are (Config.Submitters), so a batch holding all of
// them is committed at once. The vote bound is lifted so that only the
// hand-off is measured.
func BenchmarkSubmit(b *testing.B) {
	callers := 64 * runtime.GOMAXPROCS(0)
	b.Run("batch-delay", func(b *testing.B) { benchSubmit(b, 0) })
	b.Run(fmt.Sprintf("submitters=%d", callers), func(b *testing.B) { benchSubmit(b, callers) })
}

func benchSubmit(b *testing.B, submitters int) {
	f := &fakeOrigin{}
	f.verifier = sign.NewVerifier([]sign.Key{key}, 0, nil)
	f.ingestStatus.Store(200)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := originhost.Config{OriginURL: srv.URL, IngestKey: key, QueueVotes: 1 << 24, SpoolDir: b.TempDir(),
		Submitters: func() int { return submitters }, Logger: slog.New(slog.DiscardHandler)}
	h, err := originhost.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		v := shared.Vote{Poll: "p1", Choices: []uint8{1}, At: time.Now().UnixMilli()}
		for pb.Next() {
			i := n.Add(1)
			v.Voter = shared.VoterID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), byte(i >> 32), 1}
			if err := h.Submit(context.Background(), &v); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if st := h.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Votes)/float64(st.Batches), "votes/batch")
	}
}
