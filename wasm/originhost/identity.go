package originhost

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var _ edge.IdentityCounter = (*Host)(nil)

// Identity reporting bounds.
const (
	// DefaultIdentityFlush is how often the host reports what it counted.
	DefaultIdentityFlush = 10 * time.Second
	// maxCountedAddrs bounds the addresses one poll's counts hold between
	// reports; tokens to others are counted in the total only.
	maxCountedAddrs = 4096
	// maxReportedAddrs is how many addresses (the most tokens first) one
	// report carries (origin.MaxReportAddrs).
	maxReportedAddrs = 256
	maxCountedPolls  = 1024
	maxReasons       = 32
)

// identityCounts is what the host counted since its last report.
type identityCounts struct {
	mu    sync.Mutex
	polls map[string]*pollCounts
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type pollCounts struct {
	Tokens  uint64            `json:"tokens"`
	Addrs   map[string]uint64 `json:"addrs,omitempty"`
	Refused map[string]uint64 `json:"refused,omitempty"`
}

func (c *identityCounts) poll(id string) *pollCounts {
	p := c.polls[id]
	if p == nil {
		if len(c.polls) >= maxCountedPolls {
			return nil
		}
		p = &pollCounts{Addrs: map[string]uint64{}, Refused: map[string]uint64{}}
		c.polls[id] = p
	}
	return p
}

// TokenIssued implements edge.IdentityCounter.
func (h *Host) TokenIssued(poll, addr string) {
	c := &h.ids
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.poll(poll)
	if p == nil {
		return
	}
	p.Tokens++
	if _, ok := p.Addrs[addr]; ok || len(p.Addrs) < maxCountedAddrs {
		p.Addrs[addr]++
	}
}

// TokenRefused implements edge.IdentityCounter.
func (h *Host) TokenRefused(poll, reason string) {
	c := &h.ids
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.poll(poll)
	if p == nil {
		return
	}
	if _, ok := p.Refused[reason]; ok || len(p.Refused) < maxReasons {
		p.Refused[reason]++
	}
}

// startIdentityReports reports the counts every interval until Close.
func (h *Host) startIdentityReports(interval time.Duration) {
	h.ids.polls = map[string]*pollCounts{}
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
	h.ids.mu.Lock()
	polls := h.ids.polls
	h.ids.polls = map[string]*pollCounts{}
	h.ids.mu.Unlock()
	for id, p := range polls {
		if len(p.Addrs) > maxReportedAddrs {
			keys := make([]string, 0, len(p.Addrs))
			for a := range p.Addrs {
				keys = append(keys, a)
			}
			slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(p.Addrs[b], p.Addrs[a]) })
			for _, a := range keys[maxReportedAddrs:] {
				delete(p.Addrs, a)
			}
		}
		if err := h.postIdentity(ctx, id, p); err != nil {
			h.log.Warn("identity figures not reported", "poll", id, "tokens", p.Tokens, "err", err)
		}
	}
}

func (h *Host) postIdentity(ctx context.Context, poll string, p *pollCounts) error {
	body, err := json.Marshal(p)
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "encode identity figures")
	}
	path := shared.IdentityStatsPath(poll)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	sig := sign.Sign(h.cfg.IngestKey, h.cfg.Now(), sign.RequestWithBody(http.MethodPost, req.URL.Path, body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sign.HeaderKeyID, sig.KeyID)
	req.Header.Set(sign.HeaderTimestamp, strconv.FormatInt(sig.Timestamp, 10))
	req.Header.Set(sign.HeaderSignature, sig.MAC)
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
