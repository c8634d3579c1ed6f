package server

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var batchPool = sync.Pool{New: func() any { return new(shared.Batch) }}

// ingest handles POST /v1/ingest: size limit, media type, signature (before
// anything is decoded or stored), decode, apply, receipt.
func (s *Server) ingest(ctx *fasthttp.RequestCtx) {
	s.metrics.ingestActive.Inc()
	defer s.metrics.ingestActive.Dec()
	body := ctx.Request.Body()
	if len(body) > shared.MaxBatchBytes {
		s.metrics.batch("too_large")
		s.fail(ctx, shared.Errorf(shared.ETOOLARGE, "batch larger than %d bytes", shared.MaxBatchBytes))
		return
	}
	if !isMsgpack(ctx.Request.Header.ContentType()) {
		s.metrics.batch("bad_media_type")
		s.fail(ctx, shared.Errorf(shared.EUNSUPPORTED, "Content-Type must be %s", shared.ContentTypeMsgpack))
		return
	}
	h := &ctx.Request.Header
	if err := s.verifier.Verify(
		string(h.Peek(sign.HeaderKeyID)),
		string(h.Peek(sign.HeaderTimestamp)),
		string(h.Peek(sign.HeaderSignature)),
		body,
	); err != nil {
		s.metrics.batch("unauthorized")
		s.fail(ctx, err)
		return
	}
	b := batchPool.Get().(*shared.Batch)
	defer batchPool.Put(b)
	if err := shared.UnmarshalBatch(body, b); err != nil {
		s.metrics.batch("malformed")
		s.fail(ctx, err)
		return
	}
	// The apply runs on a context detached from the connection: a client
	// that goes away mid-request cannot leave a batch half applied; the
	// store call finishes (or times out) on its own.
	c, cancel := context.WithTimeout(context.Background(), s.applyTimeout)
	start := time.Now()
	r, err := s.store.Apply(c, b, s.verifier.Window())
	took := time.Since(start)
	cancel()
	s.metrics.applyLatency.Observe(took.Seconds())
	if err != nil {
		s.metrics.batch("error")
		s.log.Warn("batch not applied", "batch", b.ID.String(), "edge", b.Edge, "votes", len(b.Votes), "apply_ms", ms(took), "err", err)
		s.fail(ctx, s.storeErr("apply", err))
		return
	}
	out, err := shared.MarshalReceipt(r)
	if err != nil {
		s.metrics.batch("error")
		s.fail(ctx, shared.Wrap(shared.EINTERNAL, err, "encode receipt"))
		return
	}
	s.metrics.receipt(r)
	s.logBatch(b, r, took)
	ctx.SetContentType(shared.ContentTypeMsgpack)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// isMsgpack reports whether a Content-Type names MessagePack, ignoring
// parameters and case.
func isMsgpack(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	return bytes.EqualFold(ct, []byte(shared.ContentTypeMsgpack)) || bytes.EqualFold(ct, []byte("application/x-msgpack"))
}

// logBatch logs one applied or replayed batch under its id, the id the
// edge logged when it sent the batch and the ledger records before its
// votes: an operator follows one batch from the edge to Redis by it. Info
// level, or warning when the origin refused some of its votes (by reason).
func (s *Server) logBatch(b *shared.Batch, r *shared.Receipt, took time.Duration) {
	rejected := r.Total() - r.Accepted - r.Duplicate
	level := slog.LevelInfo
	if rejected > 0 && !r.Replayed {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{slog.String("batch", b.ID.String()), slog.String("edge", b.Edge), slog.Int("votes", len(b.Votes)),
		slog.Uint64("accepted", uint64(r.Accepted)), slog.Uint64("duplicate", uint64(r.Duplicate)),
		slog.Bool("replayed", r.Replayed), slog.Float64("apply_ms", ms(took))}
	for i, n := range r.Rejected {
		if n > 0 {
			attrs = append(attrs, slog.Uint64("rejected_"+shared.Reasons[i], uint64(n)))
		}
	}
	msg := "batch applied"
	switch {
	case r.Replayed:
		msg = "batch replayed: answered with its original receipt, nothing counted"
	case level == slog.LevelWarn:
		msg = "batch applied with refused votes"
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}
