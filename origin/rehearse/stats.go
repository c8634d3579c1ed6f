package rehearse

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// lateAfter is how far behind its planned arrival a voter may start before
// it counts as late.
const lateAfter = 10 * time.Millisecond

// nShards spreads the per-voter records (latencies, receipts) over locks.
const nShards = 64

// shard holds latency histograms (µs) and keys for some of the voters.
type shard struct {
	mu    sync.Mutex
	tok   *hdrhistogram.Histogram
	vote  *hdrhistogram.Histogram
	acked []uint64 // ledger keys of 202 receipts (repeats included)
	bad   []uint64 // ledger keys of voters who sent bad input
	// refused are ledger keys of voters refused (4xx other than 409, or
	// 5xx) and never acknowledged: none may be counted.
	refused []uint64
	_       [64]byte
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 120_000_000, 3) }

func (s *shard) record(h **hdrhistogram.Histogram, d time.Duration) {
	s.mu.Lock()
	_ = (*h).RecordValue(max(d.Microseconds(), 1))
	s.mu.Unlock()
}

func (s *shard) ack(k uint64) {
	s.mu.Lock()
	s.acked = append(s.acked, k)
	s.mu.Unlock()
}

// statuses counts answers by HTTP status; index 0 counts transport errors.
type statuses [600]atomic.Int64

func (s *statuses) add(st int, err error) {
	if err != nil || st < 100 || st >= len(s) {
		st = 0
	}
	s[st].Add(1)
}

// snapshot returns the non-zero counts keyed by status ("error" for 0).
func (s *statuses) snapshot() map[string]int64 {
	m := map[string]int64{}
	for i := range s {
		if n := s[i].Load(); n > 0 {
			k := "error"
			if i > 0 {
				k = strconv.Itoa(i)
			}
			m[k] = n
		}
	}
	return m
}

func (s *statuses) sum(from, to int) int64 {
	var n int64
	for i := from; i < to; i++ {
		n += s[i].Load()
	}
	return n
}

// stats are one run's counters.
type stats struct {
	start   time.Time
	voters  atomic.Int64
	tokens  statuses
	votes   statuses
	repeats statuses
	bads    statuses
	unknown atomic.Int64 // votes sent whose answer never came
	lateN   atomic.Int64
	maxLate atomic.Int64 // ns
	shards  [nShards]shard
}

func newStats() *stats {
	s := &stats{}
	for i := range s.shards {
		s.shards[i].tok, s.shards[i].vote = newHist(), newHist()
	}
	return s
}

func (s *stats) shard(n int64) *shard { return &s.shards[n%nShards] }

func (s *stats) late(d time.Duration) {
	if d <= lateAfter {
		return
	}
	s.lateN.Add(1)
	for {
		m := s.maxLate.Load()
		if int64(d) <= m || s.maxLate.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (s *stats) tokenDone(st int, err error) { s.tokens.add(st, err) }
func (s *stats) badDone(st int, err error)   { s.bads.add(st, err) }

func (s *stats) voteDone(st int, sent bool, err error) {
	s.votes.add(st, err)
	if err != nil && sent {
		s.unknown.Add(1)
	}
}

func (s *stats) repeatDone(st int, sent bool, err error) {
	s.repeats.add(st, err)
	if err != nil && sent {
		s.unknown.Add(1)
	}
}

// latencies merges the shards' histograms.
func (s *stats) latencies() (tok, vote *hdrhistogram.Histogram) {
	tok, vote = newHist(), newHist()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		tok.Merge(sh.tok)
		vote.Merge(sh.vote)
		sh.mu.Unlock()
	}
	return tok, vote
}

// keys returns the distinct acknowledged keys, the bad voters' keys and
// the refused voters' keys, sorted.
func (s *stats) keys() (acked, bad, refused []uint64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		acked = append(acked, sh.acked...)
		bad = append(bad, sh.bad...)
		refused = append(refused, sh.refused...)
		sh.mu.Unlock()
	}
	slices.Sort(acked)
	slices.Sort(bad)
	slices.Sort(refused)
	return slices.Compact(acked), bad, refused
}

// Quantiles are latencies in milliseconds.
type Quantiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func quantiles(h *hdrhistogram.Histogram) Quantiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Quantiles{Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max())}
}

// Report is a rehearsal's outcome.
type Report struct {
	Edge        string  `json:"edge"`
	Poll        string  `json:"poll"`
	Kind        string  `json:"kind"`
	Options     int     `json:"options"`
	Mode        string  `json:"mode"` // "rate" (open model) or "concurrency" (closed)
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Sources     int     `json:"source_addresses"`
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted,omitempty"`

	// Voters is the number of simulated voters started.
	Voters int64 `json:"voters"`
	// Tokens counts token answers by status ("error": no answer).
	Tokens map[string]int64 `json:"tokens"`
	// Votes counts first votes by status.
	Votes map[string]int64 `json:"votes"`
	// Acknowledged is the number of distinct voters answered 202.
	Acknowledged int64 `json:"acknowledged"`
	// Repeats counts second votes by status (409, or 202 at another isolate).
	Repeats map[string]int64 `json:"repeats"`
	// Bad counts bad-input requests by status; all should be 4xx.
	Bad map[string]int64 `json:"bad"`
	// Unknown counts votes sent whose answer never came (may be counted).
	Unknown int64 `json:"unknown_outcome"`
	// VotesPerSecond is vote requests answered per second.
	VotesPerSecond float64 `json:"votes_per_second"`
	// LateStarts counts open-model voters that started over 10 ms late.
	LateStarts int64   `json:"late_starts"`
	MaxLateMS  float64 `json:"max_late_ms"`

	TokenLatency Quantiles `json:"token_latency"`
	VoteLatency  Quantiles `json:"vote_latency"`

	Verification *Verification `json:"verification,omitempty"`
}

func (s *stats) report(cfg *Config, elapsed time.Duration, info *pollInfo) *Report {
	tok, vote := s.latencies()
	acked, _, _ := s.keys()
	r := &Report{
		Edge: cfg.Edge, Poll: cfg.Poll, Kind: info.Poll.Kind, Options: len(info.Poll.Options),
		Rate: cfg.Rate, Concurrency: cfg.Concurrency, Seconds: elapsed.Seconds(),
		Voters: s.voters.Load(), Tokens: s.tokens.snapshot(), Votes: s.votes.snapshot(),
		Acknowledged: int64(len(acked)), Repeats: s.repeats.snapshot(), Bad: s.bads.snapshot(),
		Unknown: s.unknown.Load(), LateStarts: s.lateN.Load(), MaxLateMS: float64(s.maxLate.Load()) / 1e6,
		TokenLatency: quantiles(tok), VoteLatency: quantiles(vote),
	}
	r.Mode = "concurrency"
	if cfg.Rate > 0 {
		r.Mode = "rate"
	}
	if elapsed > 0 {
		r.VotesPerSecond = float64(s.votes.sum(1, 600)+s.repeats.sum(1, 600)+s.bads.sum(1, 600)) / elapsed.Seconds()
	}
	return r
}
