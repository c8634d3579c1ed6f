// Package identitystats counts, at an edge, the voter tokens issued per poll
// and client address and the token requests refused per reason, for the
// origin's integrity report (POST shared.IdentityStatsPath, pollctl stats).
// Every host counts the same way; each reports in its own way (the harness
// on a timer, the Worker from within a token request).
package identitystats

import (
	"cmp"
	"slices"
	"strconv"
	"sync"

	"github.com/edgepoll/edgepoll/shared"
)

// Bounds of what is counted between two reports.
const (
	// MaxCountedAddrs bounds the addresses one poll's counts hold; tokens
	// to others are counted in the total only.
	MaxCountedAddrs = 4096
	// MaxReportedAddrs is how many addresses (the most tokens first) one
	// report carries (the origin's MaxReportAddrs).
	MaxReportedAddrs = 256
	// MaxPolls bounds the polls counted between reports.
	MaxPolls = 1024
	// MaxReasons bounds the refusal reasons per poll.
	MaxReasons = 32
)

// Delta is what an edge counted for one poll since its last report: the
// body of a report.
type Delta struct {
	Tokens  uint64            `json:"tokens"`
	Addrs   map[string]uint64 `json:"addrs,omitempty"`
	Refused map[string]uint64 `json:"refused,omitempty"`
}

// Counts accumulates deltas per poll. The zero value is ready; it is safe
// for concurrent use.
type Counts struct {
	mu    sync.Mutex
	polls map[string]*Delta
}

func (c *Counts) poll(id string) *Delta {
	if c.polls == nil {
		c.polls = map[string]*Delta{}
	}
	p := c.polls[id]
	if p == nil {
		if len(c.polls) >= MaxPolls {
			return nil
		}
		p = &Delta{Addrs: map[string]uint64{}, Refused: map[string]uint64{}}
		c.polls[id] = p
	}
	return p
}

// Issued counts a new voter token of poll issued to addr.
func (c *Counts) Issued(poll, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.poll(poll); p != nil {
		p.Tokens++
		if _, ok := p.Addrs[addr]; ok || len(p.Addrs) < MaxCountedAddrs {
			p.Addrs[addr]++
		}
	}
}

// Refused counts a token request of poll refused for reason.
func (c *Counts) Refused(poll, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.poll(poll); p != nil {
		if _, ok := p.Refused[reason]; ok || len(p.Refused) < MaxReasons {
			p.Refused[reason]++
		}
	}
}

// Take returns what was counted since the last Take, each poll's addresses
// cut to the MaxReportedAddrs with the most tokens, and starts afresh.
func (c *Counts) Take() map[string]*Delta {
	c.mu.Lock()
	polls := c.polls
	c.polls = nil
	c.mu.Unlock()
	for _, p := range polls {
		if len(p.Addrs) > MaxReportedAddrs {
			keys := make([]string, 0, len(p.Addrs))
			for a := range p.Addrs {
				keys = append(keys, a)
			}
			slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(p.Addrs[b], p.Addrs[a]) })
			for _, a := range keys[MaxReportedAddrs:] {
				delete(p.Addrs, a)
			}
		}
	}
	return polls
}

// AppendJSON appends d as the report's JSON body. It is written by hand
// (with sorted keys) so the Worker's TinyGo build, whose encoding/json has
// gaps, encodes it the same way.
func (d *Delta) AppendJSON(b []byte) []byte {
	b = append(b, `{"tokens":`...)
	b = strconv.AppendUint(b, d.Tokens, 10)
	for _, m := range []struct {
		name string
		m    map[string]uint64
	}{{"addrs", d.Addrs}, {"refused", d.Refused}} {
		if len(m.m) == 0 {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, m.name...)
		b = append(b, `":{`...)
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = shared.AppendJSONString(b, k)
			b = append(b, ':')
			b = strconv.AppendUint(b, m.m[k], 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
