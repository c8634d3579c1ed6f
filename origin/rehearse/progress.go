package rehearse

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// barStep is the unit of a timed run's bar.
const barStep = 100 * time.Millisecond

// progress draws live figures: a bar (terminal) or one line per second.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(cfg *Config, s *stats) *progress {
	p := &progress{done: make(chan struct{})}
	if cfg.Progress == nil {
		return p
	}
	every := time.Second
	var bar *progressbar.ProgressBar
	if cfg.Terminal {
		every = 250 * time.Millisecond
		max := int64(-1) // a spinner when the end is unknown
		opts := []progressbar.Option{progressbar.OptionSetWriter(cfg.Progress), progressbar.OptionSetWidth(24),
			progressbar.OptionSetPredictTime(false), progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true)}
		switch {
		case cfg.Voters > 0:
			max = cfg.Voters
			opts = append(opts, progressbar.OptionShowCount())
		case cfg.Duration > 0:
			max = int64(cfg.Duration / barStep)
			opts = append(opts, progressbar.OptionSetElapsedTime(true))
		}
		bar = progressbar.NewOptions64(max, opts...)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastN int64
		lastT := time.Now()
		for {
			final := false
			select {
			case <-p.done:
				final = true
			case <-t.C:
			}
			now := time.Now()
			n := answered(s)
			rate := float64(n-lastN) / now.Sub(lastT).Seconds()
			lastN, lastT = n, now
			line := s.line(rate)
			if bar != nil {
				switch {
				case cfg.Voters > 0:
					_ = bar.Set64(s.voters.Load())
				case cfg.Duration > 0:
					_ = bar.Set64(min(int64(now.Sub(s.start)/barStep), int64(cfg.Duration/barStep)))
				default:
					_ = bar.Add(1)
				}
				bar.Describe(line)
				if final {
					_ = bar.Finish()
					fmt.Fprintln(cfg.Progress)
				}
			} else if !final {
				fmt.Fprintf(cfg.Progress, "%6.1fs  %s\n", now.Sub(s.start).Seconds(), line)
			}
			if final {
				return
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// answered counts vote requests answered so far.
func answered(s *stats) int64 {
	return s.votes.sum(1, 600) + s.repeats.sum(1, 600) + s.bads.sum(1, 600)
}

// line is one progress line: votes/s, acknowledged, each error status,
// vote latency quantiles.
func (s *stats) line(rate float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7.0f votes/s  voters %d  ack %d", rate, s.voters.Load(), s.votes[202].Load())
	errs := map[string]int64{}
	for _, c := range []*statuses{&s.votes, &s.repeats, &s.tokens} {
		for k, n := range c.snapshot() {
			if k != "200" && k != "202" && k != "409" {
				errs[k] += n
			}
		}
	}
	if n := s.repeats[409].Load() + s.votes[409].Load(); n > 0 {
		errs["409"] = n
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s:%d", k, errs[k])
	}
	if n := s.bads.sum(0, 600); n > 0 {
		fmt.Fprintf(&b, "  bad %d", n)
	}
	_, vote := s.latencies()
	fmt.Fprintf(&b, "  p50 %s p99 %s", fmtMS(vote.ValueAtQuantile(50)), fmtMS(vote.ValueAtQuantile(99)))
	if n := s.lateN.Load(); n > 0 {
		fmt.Fprintf(&b, "  late %d", n)
	}
	return b.String()
}

func fmtMS(us int64) string {
	return fmt.Sprintf("%.1fms", float64(us)/1000)
}
