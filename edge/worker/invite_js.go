//go:build js && wasm

package worker

import (
	"context"
	"net/http"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var _ edge.InviteHost = (*Host)(nil)

// RedeemInvite implements edge.InviteHost: a POST of the code to
// {ORIGIN_URL}/v1/polls/{poll}/invites/redeem through the isolate's fetch,
// signed with INGEST_KEY over invite.SignedBody, from the request that
// asks (never cached: a redeem changes state once).
func (h *Host) RedeemInvite(ctx context.Context, poll string, code invite.Code) error {
	if !shared.ValidPollID(poll) {
		return shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	path := invite.RedeemPath(poll)
	body := []byte(code)
	sig := sign.Sign(h.opt.IngestKey, time.Now(), invite.SignedBody(http.MethodPost, path, body))
	hd := http.Header{
		"Content-Type": {"text/plain"},
	}
	sig.SetHeaders(hd.Set)
	resp, err := h.fetch(ctx, http.MethodPost, h.opt.OriginURL+path, hd, body)
	if err != nil {
		h.Log("warn", "invite redeem failed", "poll", poll, "err", err.Error())
		return shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable; the code may or may not be used, retry")
	}
	err = invite.RedeemOutcome(resp.Status)
	if shared.ErrorCode(err) == shared.EUNAVAILABLE {
		h.Log("warn", "invite redeem refused", "poll", poll, "status", resp.Status)
	}
	return err
}
