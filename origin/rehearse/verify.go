package rehearse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/origin/adminclient"
)

// Verification is the origin's count checked against what the edge answered.
type Verification struct {
	// Passed is true when every check passed.
	Passed bool `json:"passed"`
	// Settled is false when counts were still changing at the --settle bound.
	Settled       bool    `json:"settled"`
	SettleSeconds float64 `json:"settle_seconds"`
	// Baseline is the poll's voter count before the run.
	Baseline uint64 `json:"baseline_voters"`
	// Counted is the number of voters the origin counted during the run.
	Counted uint64 `json:"counted"`
	// Acknowledged is the number of distinct voters the edge answered 202.
	Acknowledged int64 `json:"acknowledged"`
	// LedgerRows is the number of ballots in the ledger export.
	LedgerRows int64 `json:"ledger_rows"`
	// Duplicates counts voter keys found more than once in the ledger.
	Duplicates int64 `json:"duplicate_voter_keys"`
	// Missing counts 202 receipts not in the ledger.
	Missing int64 `json:"missing_receipts"`
	// BadCounted counts bad-input voters found in the ledger or answered 2xx.
	BadCounted int64 `json:"bad_input_counted"`
	// Refused counts voters whose votes were refused (4xx other than 409,
	// 5xx) and never acknowledged; RefusedCounted those found in the ledger.
	Refused        int64 `json:"refused"`
	RefusedCounted int64 `json:"refused_counted"`
	// Checks lists each check and its outcome.
	Checks []Check `json:"checks"`
}

// Check is one verification check.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// pollEvery is how often counts are read while settling.
const pollEvery = 250 * time.Millisecond

// verify waits for the origin's counts to settle, then checks them and the
// ledger against the run's answers.
func verify(ctx context.Context, cfg *Config, s *stats, baseline *adminclient.Results) (*Verification, error) {
	acked, bad, refused := s.keys()
	v := &Verification{Baseline: baseline.Voters, Acknowledged: int64(len(acked)), Refused: int64(len(refused))}
	start := time.Now()
	deadline := start.Add(cfg.Settle)
	quiet := min(5*time.Second, cfg.Settle)
	last, lastChange := uint64(0), start
	for first := true; ; first = false {
		r, err := cfg.Admin.Results(ctx, cfg.Poll)
		if err != nil {
			return nil, fmt.Errorf("origin results after the run: %w", err)
		}
		now := time.Now()
		if first || r.Voters != last {
			last, lastChange = r.Voters, now
		}
		counted := r.Voters - min(r.Voters, baseline.Voters)
		if counted >= uint64(len(acked)) && !first && now.Sub(lastChange) >= pollEvery || now.Sub(lastChange) >= quiet {
			v.Settled = true
			break
		}
		if now.After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("settling: %w", ctx.Err())
		case <-time.After(pollEvery):
		}
	}
	v.SettleSeconds = time.Since(start).Seconds()
	v.Counted = last - min(last, baseline.Voters)

	ledger, rows, err := readLedger(ctx, cfg.Admin, cfg.Poll)
	if err != nil {
		return nil, err
	}
	v.LedgerRows = rows
	for _, n := range ledger {
		if n > 1 {
			v.Duplicates++
		}
	}
	var missing []string
	for _, k := range acked {
		if ledger[k] == 0 {
			v.Missing++
			if len(missing) < 3 {
				missing = append(missing, fmt.Sprintf("%016x", k))
			}
		}
	}
	for _, k := range bad {
		if ledger[k] > 0 {
			v.BadCounted++
		}
	}
	v.BadCounted += s.bads.sum(200, 300)
	for _, k := range refused {
		if ledger[k] > 0 {
			v.RefusedCounted++
		}
	}

	unknown := s.unknown.Load()
	add := func(name string, ok bool, detail string) {
		v.Checks = append(v.Checks, Check{Name: name, Passed: ok, Detail: detail})
	}
	countOK := v.Counted == uint64(len(acked)) || (v.Counted > uint64(len(acked)) && v.Counted-uint64(len(acked)) <= uint64(unknown))
	detail := fmt.Sprintf("counted %d, acknowledged %d", v.Counted, len(acked))
	if unknown > 0 {
		detail += fmt.Sprintf(" (+ up to %d with no answer)", unknown)
	}
	if !v.Settled {
		detail += "; still changing after " + cfg.Settle.String()
	}
	add("counted voters match acknowledged voters", countOK, detail)
	add("no voter counted twice", v.Duplicates == 0, fmt.Sprintf("%d duplicate voter keys in %d ledger rows", v.Duplicates, rows))
	detail = fmt.Sprintf("%d of %d receipts missing", v.Missing, len(acked))
	if len(missing) > 0 {
		detail += " (e.g. " + strings.Join(missing, ", ") + ")"
	}
	add("every receipt in the ledger", v.Missing == 0, detail)
	add("no bad input counted", v.BadCounted == 0, fmt.Sprintf("%d of %d bad-input voters counted", v.BadCounted, s.bads.sum(0, 600)))
	add("no refused vote counted", v.RefusedCounted == 0, fmt.Sprintf("%d of %d refused voters counted", v.RefusedCounted, len(refused)))
	v.Passed = true
	for _, c := range v.Checks {
		v.Passed = v.Passed && c.Passed
	}
	return v, nil
}

// readLedger streams the poll's ledger export and counts rows per voter key.
func readLedger(ctx context.Context, admin *adminclient.Client, poll string) (map[uint64]uint32, int64, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(admin.Export(ctx, poll, "ledger", "csv", pw))
	}()
	defer pr.Close()
	m := map[uint64]uint32{}
	var rows int64
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			if !strings.HasPrefix(sc.Text(), "voter_key") {
				return nil, 0, fmt.Errorf("ledger export: unexpected header %q", sc.Text())
			}
			continue
		}
		f, _, _ := strings.Cut(sc.Text(), ",")
		if len(f) < 16 {
			return nil, 0, fmt.Errorf("ledger export line %d: voter key %q", line+1, f)
		}
		k, err := strconv.ParseUint(f[:16], 16, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("ledger export line %d: %w", line+1, err)
		}
		m[k]++
		rows++
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("ledger export: %w", err)
	}
	return m, rows, nil
}

// Table writes the report as an operator's table.
func (r *Report) Table(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(k, format string, a ...any) { fmt.Fprintf(bw, "%-22s "+format+"\n", append([]any{k}, a...)...) }
	p("edge", "%s (%d source addresses)", r.Edge, r.Sources)
	p("poll", "%s (%s, %d options)", r.Poll, r.Kind, r.Options)
	if r.Mode == "rate" {
		p("load", "open model, %.0f voters/s planned", r.Rate)
	} else {
		p("load", "closed model, %d voters in flight", r.Concurrency)
	}
	p("run", "%.1fs, %d voters%s", r.Seconds, r.Voters, map[bool]string{true: " (interrupted)"}[r.Interrupted])
	p("votes/s", "%.0f", r.VotesPerSecond)
	p("acknowledged voters", "%d", r.Acknowledged)
	p("tokens", "%s", fmtStatuses(r.Tokens))
	p("votes", "%s", fmtStatuses(r.Votes))
	if len(r.Repeats) > 0 {
		p("repeats", "%s", fmtStatuses(r.Repeats))
	}
	if len(r.Bad) > 0 {
		p("bad input", "%s", fmtStatuses(r.Bad))
	}
	if r.Unknown > 0 {
		p("no answer", "%d votes (outcome unknown)", r.Unknown)
	}
	if r.Mode == "rate" {
		p("late starts", "%d (max %.1fms)", r.LateStarts, r.MaxLateMS)
	}
	q := func(k string, x Quantiles) {
		p(k, "p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms", x.P50, x.P90, x.P99, x.Max)
	}
	q("token latency", r.TokenLatency)
	q("vote latency", r.VoteLatency)
	if v := r.Verification; v != nil {
		fmt.Fprintln(bw)
		for _, c := range v.Checks {
			mark := "ok  "
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(bw, "%s  %-42s %s\n", mark, c.Name, c.Detail)
		}
		verdict := "PASSED"
		if !v.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(bw, "verification %s (settled in %.1fs)\n", verdict, v.SettleSeconds)
	}
	return bw.Flush()
}

func fmtStatuses(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, "  ")
}
