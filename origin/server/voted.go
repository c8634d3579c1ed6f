package server

import (
	"context"
	"encoding/hex"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// getVoted serves GET /v1/polls/{id}/voters/{voter}: whether the voter
// (32 hex digits) is counted in the poll. Only edges may ask: the request is
// signed with an ingest key over sign.RequestBody(method, path), so a voter
// id seen elsewhere (an export, a receipt) cannot be probed from outside.
func (s *Server) getVoted(ctx *fasthttp.RequestCtx, id, voterHex string) {
	h := &ctx.Request.Header
	if err := s.verifier.Verify(
		string(h.Peek(sign.HeaderKeyID)),
		string(h.Peek(sign.HeaderTimestamp)),
		string(h.Peek(sign.HeaderSignature)),
		sign.RequestBody(string(ctx.Method()), string(ctx.Path())),
	); err != nil {
		s.fail(ctx, err)
		return
	}
	if !shared.ValidPollID(id) {
		s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "poll not found"))
		return
	}
	var voter shared.VoterID
	if len(voterHex) != 2*len(voter) {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "voter id must be %d hex digits", 2*len(voter)))
		return
	}
	if _, err := hex.Decode(voter[:], []byte(voterHex)); err != nil || voter.IsZero() {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "voter id must be %d hex digits, not all zero", 2*len(voter)))
		return
	}
	c, cancel := context.WithTimeout(context.Background(), s.applyTimeout)
	counted, err := s.store.Voted(c, id, voter)
	cancel()
	if err != nil {
		s.fail(ctx, s.storeErr("voted", err))
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "private, no-store")
	if counted {
		ctx.SetBody(shared.VoteCheckCounted)
	} else {
		ctx.SetBody(shared.VoteCheckNotCounted)
	}
}
