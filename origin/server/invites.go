package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Invite limits.
const (
	// MaxInvitesPerRequest bounds one POST /v1/admin/polls/{id}/invites.
	MaxInvitesPerRequest = 10_000_000
	// inviteChunk is how many codes are stored (one script) and then
	// streamed at a time: a code is printed only once it is stored.
	inviteChunk = 1000
)

// inviteStore returns the store's InviteStore, or answers 503 and returns nil.
func (s *Server) inviteStore(ctx *fasthttp.RequestCtx) origin.InviteStore {
	is, ok := s.store.(origin.InviteStore)
	if !ok || len(s.inviteKey) == 0 {
		s.fail(ctx, shared.Errorf(shared.EUNAVAILABLE, "this origin cannot keep invite codes: start it with INVITE_KEY (at least %d bytes)", invite.MinKeyLen))
		return nil
	}
	return is
}

// adminInvites serves /v1/admin/polls/{id}/invites: POST ?count=N creates
// N codes and streams them once as CSV (serial,code), GET streams which
// were used (serial,used). Neither ever says which code voted for what: a
// code buys a token with a fresh random voter id, and nothing records which.
func (s *Server) adminInvites(ctx *fasthttp.RequestCtx, id string) {
	if !s.allow(ctx, fasthttp.MethodGet, fasthttp.MethodPost) {
		return
	}
	is := s.inviteStore(ctx)
	if is == nil {
		return
	}
	c, cancel := s.readCtx()
	p, err := s.store.Poll(c, id)
	cancel()
	if err != nil {
		s.fail(ctx, s.storeErr("poll", err))
		return
	}
	if p.IdentityMode() != shared.IdentityInvite {
		s.fail(ctx, shared.Errorf(shared.ECONFLICT, "poll %s does not use invite codes (identity %s); create it with identity invite", id, p.IdentityMode()))
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetContentType("text/csv; charset=utf-8")
	if ctx.IsGet() {
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			c, cancel := context.WithTimeout(context.Background(), exportTimeout)
			defer cancel()
			_, _ = w.WriteString("serial,used\n")
			b := make([]byte, 0, 32)
			n := 0
			err := is.Invites(c, id, func(serial uint64, used bool) error {
				b = strconv.AppendUint(b[:0], serial, 10)
				b = append(b, ',')
				b = strconv.AppendBool(b, used)
				b = append(b, '\n')
				_, err := w.Write(b)
				if n++; n%ledgerFlushEvery == 0 && err == nil {
					err = w.Flush()
				}
				return err
			})
			if err != nil {
				s.log.Error("invite export failed", "poll", id, "err", err)
			}
		})
		return
	}
	count, err := strconv.Atoi(string(ctx.QueryArgs().Peek("count")))
	if err != nil || count < 1 || count > MaxInvitesPerRequest {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "count must be 1-%d", MaxInvitesPerRequest))
		return
	}
	key := s.inviteKey
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		_, _ = w.WriteString("serial,code\n")
		codes := make([]invite.Code, 0, inviteChunk)
		hashes := make([][invite.HashLen]byte, 0, inviteChunk)
		line := make([]byte, 0, 48)
		for done := 0; done < count; {
			n := min(inviteChunk, count-done)
			codes, hashes = codes[:0], hashes[:0]
			for range n {
				code, err := invite.New(rand.Reader)
				if err != nil {
					s.log.Error("invite creation failed", "poll", id, "err", err)
					return
				}
				codes = append(codes, code)
				hashes = append(hashes, invite.Hash(key, id, code))
			}
			c, cancel := context.WithTimeout(context.Background(), s.applyTimeout)
			first, err := is.AddInvites(c, id, hashes)
			cancel()
			if err != nil {
				// The status line is gone: the missing rows tell the client.
				s.log.Error("invite creation failed", "poll", id, "created", done, "wanted", count, "err", err)
				return
			}
			for i, code := range codes {
				line = strconv.AppendUint(line[:0], first+uint64(i), 10)
				line = append(line, ',')
				line = append(line, code.Format()...)
				line = append(line, '\n')
				if _, err := w.Write(line); err != nil {
					return
				}
			}
			if err := w.Flush(); err != nil {
				return
			}
			done += n
		}
	})
}

// adminInviteStats serves GET /v1/admin/polls/{id}/invites/stats.
func (s *Server) adminInviteStats(ctx *fasthttp.RequestCtx, id string) {
	if !s.allow(ctx, fasthttp.MethodGet) {
		return
	}
	is := s.inviteStore(ctx)
	if is == nil {
		return
	}
	c, cancel := s.readCtx()
	defer cancel()
	st, err := is.InviteStats(c, id)
	if err != nil {
		s.fail(ctx, s.storeErr("invite_stats", err))
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, st)
}

// redeemInvite serves POST /v1/polls/{id}/invites/redeem (invite.RedeemPath):
// an edge trades a voter's code. Only edges may ask: the request is signed
// with an ingest key over invite.SignedBody(method, path, code). The body is
// the code as the voter typed it (the origin parses it again). Answers 204,
// 409 for a code already used, 403 for an unknown one, 400 for a malformed one.
func (s *Server) redeemInvite(ctx *fasthttp.RequestCtx, id string) {
	h := &ctx.Request.Header
	body := ctx.Request.Body()
	if len(body) > invite.MaxInputLen {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "malformed invite code: longer than %d characters", invite.MaxInputLen))
		return
	}
	if err := s.verifier.Verify(
		string(h.Peek(sign.HeaderKeyID)),
		string(h.Peek(sign.HeaderTimestamp)),
		string(h.Peek(sign.HeaderSignature)),
		invite.SignedBody(string(ctx.Method()), string(ctx.Path()), body),
	); err != nil {
		s.fail(ctx, err)
		return
	}
	if !shared.ValidPollID(id) {
		s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "poll not found"))
		return
	}
	code, err := invite.Parse(string(body))
	if err != nil {
		s.fail(ctx, err)
		return
	}
	is := s.inviteStore(ctx)
	if is == nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), s.applyTimeout)
	err = is.RedeemInvite(c, id, invite.Hash(s.inviteKey, id, code))
	cancel()
	if err != nil {
		s.metrics.invite(shared.ErrorCode(err))
		s.fail(ctx, s.storeErr("redeem", err))
		return
	}
	s.metrics.invite("")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
