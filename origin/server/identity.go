package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// maxIdentityReport bounds POST /v1/polls/{id}/identity-stats bodies.
const maxIdentityReport = 64 << 10

// identityStore returns the store's IdentityStatsStore, or answers 503 and returns nil.
func (s *Server) identityStore(ctx *fasthttp.RequestCtx) origin.IdentityStatsStore {
	st, ok := s.store.(origin.IdentityStatsStore)
	if !ok {
		s.fail(ctx, shared.Errorf(shared.EUNAVAILABLE, "this origin's store keeps no identity figures"))
		return nil
	}
	return st
}

// postIdentityStats serves POST /v1/polls/{id}/identity-stats: an edge's
// counts since its last report. Only edges may send them (signed like the
// invite redeem). 204; 400 for a malformed or oversized report.
func (s *Server) postIdentityStats(ctx *fasthttp.RequestCtx, id string) {
	h := &ctx.Request.Header
	body := ctx.Request.Body()
	if len(body) > maxIdentityReport {
		s.fail(ctx, shared.Errorf(shared.ETOOLARGE, "identity report larger than %d bytes", maxIdentityReport))
		return
	}
	if err := s.verifier.Verify(string(h.Peek(sign.HeaderKeyID)), string(h.Peek(sign.HeaderTimestamp)), string(h.Peek(sign.HeaderSignature)),
		sign.RequestWithBody(string(ctx.Method()), string(ctx.Path()), body)); err != nil {
		s.fail(ctx, err)
		return
	}
	var d origin.IdentityDelta
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || dec.More() {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "identity report must be {\"tokens\":N,\"addrs\":{…},\"refused\":{…}}"))
		return
	}
	if err := d.Validate(); err != nil {
		s.fail(ctx, err)
		return
	}
	st := s.identityStore(ctx)
	if st == nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), s.applyTimeout)
	err := st.AddIdentityStats(c, id, &d)
	cancel()
	if err != nil {
		s.fail(ctx, s.storeErr("identity_stats", err))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// adminIdentityStats serves GET /v1/admin/polls/{id}/identity-stats?top=N
// (default 10, at most origin.MaxKeptAddrs).
func (s *Server) adminIdentityStats(ctx *fasthttp.RequestCtx, id string) {
	if !s.allow(ctx, fasthttp.MethodGet) {
		return
	}
	top := 10
	if v := ctx.QueryArgs().Peek("top"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 || n > origin.MaxKeptAddrs {
			s.fail(ctx, shared.Errorf(shared.EINVALID, "top must be 0-%d", origin.MaxKeptAddrs))
			return
		}
		top = n
	}
	st := s.identityStore(ctx)
	if st == nil {
		return
	}
	c, cancel := s.readCtx()
	defer cancel()
	r, err := st.IdentityStats(c, id, top)
	if err != nil {
		s.fail(ctx, s.storeErr("identity_stats", err))
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, r)
}
