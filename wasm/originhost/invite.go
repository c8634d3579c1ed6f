package originhost

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var _ edge.InviteHost = (*Host)(nil)

// redeemTimeout bounds one redeem request to the origin.
const redeemTimeout = 5 * time.Second

// RedeemInvite implements edge.InviteHost: a POST of the code to
// {ORIGIN_URL}/v1/polls/{poll}/invites/redeem, signed with the ingest key
// over invite.SignedBody. Nothing is cached or retried: a redeem changes
// state, and its outcome is the origin's to decide. A lost answer is
// EUNAVAILABLE; the voter's retry then gets 409 if the first one landed.
func (h *Host) RedeemInvite(ctx context.Context, poll string, code invite.Code) error {
	if !shared.ValidPollID(poll) {
		return shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	u, err := url.Parse(h.base + invite.RedeemPath(poll))
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	ctx, cancel := context.WithTimeout(ctx, redeemTimeout)
	defer cancel()
	body := []byte(code)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	sig := sign.Sign(h.cfg.IngestKey, h.cfg.Now(), invite.SignedBody(http.MethodPost, u.Path, body))
	req.Header.Set("Content-Type", "text/plain")
	sig.SetHeaders(req.Header.Set)
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		return shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable; the code may or may not be used, retry")
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusUnauthorized {
		h.log.Warn("origin refused the signed invite redeem: does INGEST_KEY match the origin's?", "body", string(msg[:min(len(msg), 200)]))
	}
	return invite.RedeemOutcome(resp.StatusCode)
}
