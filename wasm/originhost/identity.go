package originhost

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/identitystats"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var _ edge.IdentityCounter = (*Host)(nil)

// DefaultIdentityFlush is how often the host reports what it counted.
const DefaultIdentityFlush = 10 * time.Second

// identityCounts is what the host counted since its last report, and the
// loop that reports it.
type identityCounts struct {
	identitystats.Counts
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// TokenIssued implements edge.IdentityCounter.
func (h *Host) TokenIssued(poll, addr string) { h.ids.Issued(poll, addr) }

// TokenRefused implements edge.IdentityCounter.
func (h *Host) TokenRefused(poll, reason string) { h.ids.Refused(poll, reason) }

// startIdentityReports reports the counts every interval until Close.
func (h *Host) startIdentityReports(interval time.Duration) {
	h.ids.stop, h.ids.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.ids.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.ids.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), interval)
				h.reportIdentity(ctx)
				cancel()
			}
		}
	}()
}

// stopIdentityReports stops the loop and sends what is left; later calls
// (a second Close) do nothing.
func (h *Host) stopIdentityReports(ctx context.Context) {
	if h.ids.stop == nil {
		return
	}
	h.ids.once.Do(func() {
		close(h.ids.stop)
		<-h.ids.done
		h.reportIdentity(ctx)
	})
}

// reportIdentity sends each poll's counts to the origin and starts afresh.
// A report that fails is logged and dropped: these figures are for
// watching an attack, not for counting votes.
func (h *Host) reportIdentity(ctx context.Context) {
	for id, p := range h.ids.Take() {
		if err := h.postIdentity(ctx, id, p); err != nil {
			h.log.Warn("identity figures not reported", "poll", id, "tokens", p.Tokens, "err", err)
		}
	}
}

func (h *Host) postIdentity(ctx context.Context, poll string, p *identitystats.Delta) error {
	body := p.AppendJSON(nil)
	path := shared.IdentityStatsPath(poll)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	sig := sign.Sign(h.cfg.IngestKey, h.cfg.Now(), sign.RequestWithBody(http.MethodPost, req.URL.Path, body))
	req.Header.Set("Content-Type", "application/json")
	sig.SetHeaders(req.Header.Set)
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		return shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusNoContent {
		return shared.Errorf(shared.EUNAVAILABLE, "origin answered %d: %s", resp.StatusCode, msg)
	}
	return nil
}
