// Package rehearse simulates a show's audience against an edge and checks
// the origin's count afterwards: each simulated voter gets a token (GET
// /v1/polls/{id}) and votes (POST /v1/polls/{id}/votes), some vote twice or
// send bad input, at a planned arrival rate (open model) or with a fixed
// number of voters in flight (closed model). Against a loopback edge the
// voters are spread over source addresses 127.0.0.2–127.0.0.255 so
// per-address rate limits behave as for a real audience.
//
// The HTTP engine is fasthttp's client, one HostClient per source address.
// vegeta's attacker was considered and not used: it fires independent
// requests from a Targeter, while a voter's vote is built from its own
// token response (two dependent requests with per-voter state: token, poll
// kind, options, receipt for the ledger check); it binds every connection
// to one local address (vegeta.LocalAddr), not one per voter; and it has
// no closed model.
package rehearse

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/shared"
)

// Config describes one rehearsal.
type Config struct {
	// Edge is the edge's base URL, e.g. http://127.0.0.1:8788.
	Edge string
	// Poll is the poll id to vote in.
	Poll string
	// Rate plans this many voter arrivals per second (open model).
	Rate float64
	// Concurrency keeps this many voters in flight (closed model). Exactly
	// one of Rate and Concurrency is set.
	Concurrency int
	// MaxInFlight bounds voters in flight in the open model (default 10000);
	// arrivals beyond it start late and are counted as such.
	MaxInFlight int
	// Duration ends the generation of voters after this long.
	Duration time.Duration
	// Voters ends the generation after this many voters. With neither
	// Duration nor Voters the run lasts until ctx is done.
	Voters int64
	// Weights is the relative weight of each option (nil: uniform).
	Weights []float64
	// RepeatShare of the voters vote a second time.
	RepeatShare float64
	// BadShare of the voters send bad input instead of a vote.
	BadShare float64
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// NoBind turns off source-address spreading on loopback.
	NoBind bool
	// Sources, when set, are the local addresses voters are spread over
	// instead of 127.0.0.2–127.0.0.255.
	Sources []net.IP
	// Admin, when set, verifies the run against the origin's admin API.
	Admin *adminclient.Client
	// Settle bounds the wait for the origin's counts to stop changing
	// (default 30s).
	Settle time.Duration
	// Progress receives live progress (nil: none); Terminal draws a bar
	// instead of one line per second.
	Progress io.Writer
	// Terminal says Progress is a terminal.
	Terminal bool
	// Logger logs (nil: discard).
	Logger *slog.Logger
}

func (c *Config) check() error {
	u, err := url.Parse(c.Edge)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return shared.Errorf(shared.EINVALID, "edge URL %q: want http://host:port or https://host", c.Edge)
	}
	if !shared.ValidPollID(c.Poll) {
		return shared.Errorf(shared.EINVALID, "poll id %q is not valid", c.Poll)
	}
	if (c.Rate > 0) == (c.Concurrency > 0) {
		return shared.Errorf(shared.EINVALID, "give exactly one of a rate and a concurrency")
	}
	if c.Rate < 0 || c.Concurrency < 0 || c.Voters < 0 || c.Duration < 0 {
		return shared.Errorf(shared.EINVALID, "rate, concurrency, voters and duration must not be negative")
	}
	for _, s := range []float64{c.RepeatShare, c.BadShare} {
		if s < 0 || s > 1 {
			return shared.Errorf(shared.EINVALID, "shares must be between 0 and 1")
		}
	}
	sum := 0.0
	for _, w := range c.Weights {
		if w < 0 {
			return shared.Errorf(shared.EINVALID, "weights must not be negative")
		}
		sum += w
	}
	if len(c.Weights) > 0 && sum == 0 {
		return shared.Errorf(shared.EINVALID, "weights must not all be zero")
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10000
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// pollInfo is what a voter learns from its token response.
type pollInfo struct {
	Poll struct {
		Options    []json.RawMessage `json:"options"`
		Kind       string            `json:"kind"`
		MaxChoices int               `json:"max_choices"`
		Scale      *shared.Scale     `json:"scale"`
		MaxWords   int               `json:"max_words"`
		State      string            `json:"state"`
	} `json:"poll"`
	Token string `json:"token"`
}

// engine is one run's state.
type engine struct {
	cfg      Config
	clients  []*fasthttp.HostClient
	tokenURL string
	voteURL  string
	options  int       // from the probe: options, scale values or rehearsal words
	cum      []float64 // cumulative weights
	st       *stats
	next     atomic.Int64 // next voter number
}

// Run rehearses cfg and, when cfg.Admin is set, verifies the origin's
// count. The returned report is complete even when verification fails
// (Report.Verification.Passed); an error means the run could not be done.
// Cancelling ctx stops generating voters, lets the ones in flight finish and
// skips verification.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, st: newStats()}
	base := strings.TrimRight(cfg.Edge, "/")
	e.tokenURL = base + "/v1/polls/" + cfg.Poll
	e.voteURL = e.tokenURL + "/votes"
	if err := e.dial(); err != nil {
		return nil, err
	}
	info, err := e.probe()
	if err != nil {
		return nil, err
	}
	e.options = choicesOf(info)
	if len(cfg.Weights) > 0 && len(cfg.Weights) != e.options {
		return nil, shared.Errorf(shared.EINVALID, "%d weights for a poll of %d options (scale values, or rehearsal words for a words poll)", len(cfg.Weights), e.options)
	}
	e.cum = cumulative(cfg.Weights, e.options)
	if info.Poll.State != string(shared.StateOpen) {
		cfg.Logger.Warn("poll is not open: votes will be refused", "poll", cfg.Poll, "state", info.Poll.State)
	}

	var baseline *adminclient.Results
	if cfg.Admin != nil {
		if baseline, err = cfg.Admin.Results(ctx, cfg.Poll); err != nil {
			return nil, fmt.Errorf("origin results before the run: %w", err)
		}
	}

	genCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		genCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	start := time.Now()
	e.st.start = start
	prog := startProgress(&e.cfg, e.st)
	if cfg.Rate > 0 {
		e.open(genCtx, start)
	} else {
		e.closed(genCtx)
	}
	elapsed := time.Since(start)
	prog.stop()

	rep := e.st.report(&e.cfg, elapsed, info)
	rep.Sources = len(e.clients)
	rep.Interrupted = ctx.Err() != nil
	if cfg.Admin != nil && !rep.Interrupted {
		v, err := verify(ctx, &e.cfg, e.st, baseline)
		if err != nil {
			return rep, err
		}
		rep.Verification = v
	}
	return rep, nil
}

// dial builds the HTTP clients: one per source address on loopback.
func (e *engine) dial() error {
	u, _ := url.Parse(e.cfg.Edge)
	host := u.Host
	tls := u.Scheme == "https"
	if u.Port() == "" {
		if tls {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	mk := func(local net.IP) *fasthttp.HostClient {
		d := &net.Dialer{Timeout: e.cfg.Timeout}
		if local != nil {
			d.LocalAddr = &net.TCPAddr{IP: local}
		}
		return &fasthttp.HostClient{
			Addr: host, IsTLS: tls, MaxConns: 1 << 16, Name: "pollctl-rehearse",
			NoDefaultUserAgentHeader: true, MaxIdleConnDuration: time.Minute,
			ReadTimeout: e.cfg.Timeout, WriteTimeout: e.cfg.Timeout,
			Dial: func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) },
		}
	}
	if len(e.cfg.Sources) > 0 && !e.cfg.NoBind {
		for _, ip := range e.cfg.Sources {
			e.clients = append(e.clients, mk(ip))
		}
		return nil
	}
	ip := net.ParseIP(u.Hostname())
	if ip != nil && ip.IsLoopback() && ip.To4() != nil && !e.cfg.NoBind {
		for i := 2; i <= 255; i++ {
			e.clients = append(e.clients, mk(net.IPv4(127, 0, 0, byte(i))))
		}
		return nil
	}
	e.clients = append(e.clients, mk(nil))
	return nil
}

// SourceAddresses reports how many client addresses a rehearsal of edge
// spreads its voters over (254 on IPv4 loopback, else 1).
func SourceAddresses(edge string) int {
	e := &engine{cfg: Config{Edge: edge, Timeout: time.Second}}
	if err := e.dial(); err != nil {
		return 0
	}
	return len(e.clients)
}

// probe gets one token to learn the poll's options and kind, and that the
// edge answers.
func (e *engine) probe() (*pollInfo, error) {
	var info pollInfo
	st, err := e.getToken(e.clients[0], &info)
	if err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "cannot reach the edge "+e.cfg.Edge)
	}
	if st == 404 {
		return nil, shared.Errorf(shared.ENOTFOUND, "the edge does not know poll %s", e.cfg.Poll)
	}
	if st != 200 || info.Token == "" || choicesOf(&info) == 0 {
		return nil, shared.Errorf(shared.EUNAVAILABLE, "edge answered %d to GET %s", st, e.tokenURL)
	}
	return &info, nil
}

// rehearsalWords are what simulated voters of a words poll answer (the
// weights, when given, are theirs).
var rehearsalWords = []string{"amazing", "fun", "long", "loud", "great", "boring", "brilliant", "meh",
	"wow", "cool", "odd", "epic", "slow", "sweet", "wild", "calm"}

// choicesOf is how many things a voter of the poll picks among: options,
// scale values, or rehearsalWords.
func choicesOf(info *pollInfo) int {
	switch shared.Kind(info.Poll.Kind) {
	case shared.KindScale:
		if info.Poll.Scale == nil {
			return 0
		}
		return info.Poll.Scale.Steps()
	case shared.KindWords:
		return len(rehearsalWords)
	}
	return len(info.Poll.Options)
}

// open plans arrivals at fixed intervals from start; a voter that starts
// later than planned (the in-flight bound was reached, or the scheduler
// lagged) is counted late.
func (e *engine) open(ctx context.Context, start time.Time) {
	interval := time.Duration(float64(time.Second) / e.cfg.Rate)
	sem := make(chan struct{}, e.cfg.MaxInFlight)
	var wg sync.WaitGroup
	for i := int64(0); e.cfg.Voters == 0 || i < e.cfg.Voters; i++ {
		planned := start.Add(time.Duration(i) * interval)
		if d := time.Until(planned); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(n int64) {
			defer wg.Done()
			defer func() { <-sem }()
			e.st.late(time.Since(planned))
			e.voter(n)
		}(i)
	}
	wg.Wait()
}

// closed keeps cfg.Concurrency voters in flight.
func (e *engine) closed(ctx context.Context) {
	var wg sync.WaitGroup
	for range e.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := e.next.Add(1) - 1
				if e.cfg.Voters > 0 && n >= e.cfg.Voters {
					return
				}
				e.voter(n)
			}
		}()
	}
	wg.Wait()
}

// Bad input kinds, in turn.
const (
	badMalformed = iota
	badOutOfRange
	badNoToken
	badKinds
)

var rngs = sync.Pool{New: func() any { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }}

// voter is one simulated voter, numbered n.
func (e *engine) voter(n int64) {
	rng := rngs.Get().(*rand.Rand)
	defer rngs.Put(rng)
	hc := e.clients[n%int64(len(e.clients))]
	sh := e.st.shard(n)
	e.st.voters.Add(1)
	bad := e.cfg.BadShare > 0 && rng.Float64() < e.cfg.BadShare
	repeat := !bad && e.cfg.RepeatShare > 0 && rng.Float64() < e.cfg.RepeatShare
	badKind := int(n % badKinds)

	if bad && badKind == badNoToken {
		st, _, _, err := e.post(hc, sh, false, []byte(`{"choice":0}`))
		e.st.badDone(st, err)
		return
	}
	var info pollInfo
	t0 := time.Now()
	st, err := e.getToken(hc, &info)
	sh.record(&sh.tok, time.Since(t0))
	e.st.tokenDone(st, err)
	if err != nil || st != 200 || len(info.Token) != 43 {
		return
	}
	if bad {
		var body []byte
		switch {
		case badKind == badMalformed:
			body = []byte(`{"token":"` + info.Token + `","choice":`)
		case info.Poll.Kind == string(shared.KindScale) && info.Poll.Scale != nil:
			body = []byte(`{"token":"` + info.Token + `","value":` + strconv.Itoa(info.Poll.Scale.Max+1) + `}`)
		case info.Poll.Kind == string(shared.KindWords):
			body = []byte(`{"token":"` + info.Token + `","words":["not a word"]}`)
		default:
			body = []byte(`{"token":"` + info.Token + `","choice":` + strconv.Itoa(len(info.Poll.Options)) + `}`)
		}
		st, _, _, err := e.post(hc, sh, false, body)
		e.st.badDone(st, err)
		if k, ok := tokenKey(info.Token); ok {
			sh.mu.Lock()
			sh.bad = append(sh.bad, k)
			sh.mu.Unlock()
		}
		return
	}
	st, key, sent, err := e.post(hc, sh, true, e.ballot(rng, &info))
	e.st.voteDone(st, sent, err)
	acked, refused := st == 202, refusal(st)
	if acked {
		sh.ack(key)
	}
	if repeat {
		st, key, sent, err := e.post(hc, sh, true, e.ballot(rng, &info))
		e.st.repeatDone(st, sent, err)
		if st == 202 {
			sh.ack(key)
			acked = true
		}
		refused = refused || refusal(st)
	}
	if refused && !acked {
		if k, ok := tokenKey(info.Token); ok {
			sh.mu.Lock()
			sh.refused = append(sh.refused, k)
			sh.mu.Unlock()
		}
	}
}

// refusal reports whether a vote's answer says it was not taken: a 4xx
// other than 409 (already voted), or a 5xx.
func refusal(st int) bool { return st >= 400 && st != 409 }

// ballot draws a vote body for a voter.
func (e *engine) ballot(rng *rand.Rand, info *pollInfo) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"token":"`...)
	b = append(b, info.Token...)
	options := choicesOf(info)
	kind := shared.Kind(info.Poll.Kind)
	if options != e.options { // the poll changed under the run: a plain choice
		kind = shared.KindSingle
	}
	switch kind {
	case shared.KindScale:
		b = append(b, `","value":`...)
		b = strconv.AppendInt(b, int64(info.Poll.Scale.Min+pick(rng, e.cum, 0)), 10)
		return append(b, '}')
	case shared.KindWords:
		k := 1 + rng.IntN(min(max(info.Poll.MaxWords, 1), options))
		var taken uint64
		b = append(b, `","words":[`...)
		for i := range k {
			c := pick(rng, e.cum, taken)
			taken |= 1 << c
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, rehearsalWords[c])
		}
		return append(b, "]}"...)
	case shared.KindMulti, shared.KindRanked: // ranked: the order drawn is the preference order
	default:
		b = append(b, `","choice":`...)
		b = strconv.AppendInt(b, int64(pick(rng, e.cum, 0)), 10)
		return append(b, '}')
	}
	maxC := min(max(info.Poll.MaxChoices, 1), options)
	k := 1 + rng.IntN(maxC)
	var taken uint64 // options ≤ 64
	b = append(b, `","choices":[`...)
	for i := range k {
		c := pick(rng, e.cum, taken)
		taken |= 1 << c
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	return append(b, "]}"...)
}

// cumulative returns cumulative weights for n options (uniform when w is empty).
func cumulative(w []float64, n int) []float64 {
	cum := make([]float64, n)
	s := 0.0
	for i := range n {
		if len(w) == 0 {
			s++
		} else {
			s += w[i]
		}
		cum[i] = s
	}
	return cum
}

// pick draws an option by weight among those not in taken (a bit set).
func pick(rng *rand.Rand, cum []float64, taken uint64) int {
	for range 64 {
		x := rng.Float64() * cum[len(cum)-1]
		lo, hi := 0, len(cum)-1
		for lo < hi {
			m := (lo + hi) / 2
			if cum[m] > x {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if taken&(1<<lo) == 0 && (lo == 0 || cum[lo] > cum[lo-1]) {
			return lo
		}
	}
	for i := range cum { // weights left to the taken ones: any free option
		if taken&(1<<i) == 0 {
			return i
		}
	}
	return 0
}

// getToken GETs a voter token into info and returns the status.
func (e *engine) getToken(hc *fasthttp.HostClient, info *pollInfo) (int, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(e.tokenURL)
	if err := hc.DoTimeout(req, resp, e.cfg.Timeout); err != nil {
		return 0, fmt.Errorf("GET %s: %w", e.tokenURL, err)
	}
	st := resp.StatusCode()
	if st == 200 {
		if err := json.Unmarshal(resp.Body(), info); err != nil {
			return st, fmt.Errorf("token response: %w", err)
		}
	}
	return st, nil
}

// post sends a vote body. For a 202 it returns the receipt's ledger key.
// sent reports that the request may have reached the edge when err is set
// (its outcome is then unknown).
func (e *engine) post(hc *fasthttp.HostClient, sh *shard, timed bool, body []byte) (st int, key uint64, sent bool, err error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(e.voteURL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	t0 := time.Now()
	err = hc.DoTimeout(req, resp, e.cfg.Timeout)
	if timed {
		sh.record(&sh.vote, time.Since(t0))
	}
	if err != nil {
		return 0, 0, !dialError(err), fmt.Errorf("POST %s: %w", e.voteURL, err)
	}
	st = resp.StatusCode()
	if st == 202 {
		var r struct {
			Receipt string `json:"receipt"`
		}
		if json.Unmarshal(resp.Body(), &r) != nil || len(r.Receipt) != 32 {
			return 0, 0, true, fmt.Errorf("202 without a receipt: %.200s", resp.Body())
		}
		key, perr := strconv.ParseUint(r.Receipt[:16], 16, 64)
		if perr != nil {
			return 0, 0, true, fmt.Errorf("receipt %q: %w", r.Receipt, perr)
		}
		return st, key, true, nil
	}
	return st, 0, true, nil
}

// dialError reports whether err happened before any byte was sent.
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// tokenKey returns the ledger key (voter id bytes 0–7) carried in a token.
func tokenKey(tok string) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 8 {
		return 0, false
	}
	k, err := strconv.ParseUint(hex.EncodeToString(b[:8]), 16, 64)
	return k, err == nil
}
