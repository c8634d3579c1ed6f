// Package originhost is the wazero harness's native edge.Host, backed by the
// origin's HTTP API: poll config and results caches that honour the origin's
// Cache-Control and ETag, and a vote hand-off that group-commits votes into
// a local spool (fsynced before Submit returns, so a 202 survives kill -9 of
// the harness) from which senders deliver signed MessagePack batches to the
// origin's /v1/ingest, retrying with backoff until they are applied.
//
// Why a spool rather than waiting for the origin's receipt: a 503 must mean
// "not recorded", so that a retry is safe, and a voter kept waiting on the
// origin cannot be told that honestly when the origin's answer is lost (a
// timeout, a dropped connection, a crash mid-request). A local fsync has no
// such third outcome, and the spool rides out origin outages as the
// Worker's Queue does.
package originhost

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Defaults for zero Config fields.
const (
	DefaultQueueVotes = 10_000_000
	DefaultSpoolBytes = 1 << 30
	DefaultBatchVotes = 500
	DefaultBatchDelay = 5 * time.Millisecond
	DefaultSenders    = 2
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Config configures a Host.
type Config struct {
	// OriginURL is the origin's base URL, e.g. http://127.0.0.1:8080. Required.
	OriginURL string
	// IngestKey signs batches (sign.ParseKeys of INGEST_KEY). Required.
	IngestKey sign.Key
	// EdgeID names this edge in batches and logs.
	EdgeID string
	// SpoolDir is the vote spool's directory (created if missing; one host
	// at a time). Votes acknowledged and not yet delivered wait there across
	// restarts: New delivers what an earlier run left. Empty means a new
	// temporary directory, which no later start finds (tests only: the
	// harness binary requires one); Close removes it once it holds no votes.
	SpoolDir string
	// SpoolBytes bounds the spool's size on disk (DefaultSpoolBytes);
	// Submit answers EUNAVAILABLE while it is reached. One batch may pass it.
	SpoolBytes int64
	// SpoolSegmentBytes is the size at which a spool segment file takes no
	// more appends (default SpoolBytes/8, at most 16 MiB); a sealed segment
	// is deleted once all of it is delivered.
	SpoolSegmentBytes int64
	// QueueVotes bounds the votes spooled and not yet delivered
	// (DefaultQueueVotes); Submit answers EUNAVAILABLE when it is reached.
	QueueVotes int
	// BatchVotes bounds a batch (DefaultBatchVotes, at most shared.MaxBatchVotes).
	BatchVotes int
	// BatchDelay is how long the first vote of a batch waits for company
	// (DefaultBatchDelay).
	BatchDelay time.Duration
	// Submitters, when set, says how many Submit calls can be under way
	// now at most: the harness binary answers with its vote requests in
	// progress, capped by its guest instance count (an instance makes one
	// call at a time, and waits in it). A batch holding that many votes is
	// committed at once, since no other vote can join it in time; the
	// gatherer asks again every BatchDelay/16 while it waits. Nil (or an
	// answer ≤ 0) means unknown: batches wait out BatchDelay.
	Submitters func() int
	// Senders is the number of batches in flight to the origin at once (DefaultSenders).
	Senders int
	// MinBackoff and MaxBackoff bound the exponential retry delay.
	MinBackoff, MaxBackoff time.Duration
	// MaxClockSkew is how far this edge's clock may be from the origin's
	// (read from the Date header of origin responses) before Submit refuses
	// votes with EUNAVAILABLE (default shared.ClockSkew; negative: no check,
	// for tests that move the clock on purpose).
	MaxClockSkew time.Duration
	// Client is the HTTP client for the origin (default: one with timeouts).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives logs, the guest's included (default slog.Default()).
	Logger *slog.Logger
	// IdentityFlush is how often the tokens issued and refused that the
	// edge counted are reported to the origin for its integrity report
	// (DefaultIdentityFlush).
	IdentityFlush time.Duration
}

// Host is an edge.Host backed by the origin. Create it with New and stop it
// with Close, which delivers what it can of the vote spool.
type Host struct {
	cfg     Config
	log     *slog.Logger
	base    string
	polls   *cache
	results *cache
	voted   *votedCache
	q       *queue
	clock   *clockWatch
	ids     identityCounts
}

var (
	_ edge.Host = (*Host)(nil)
)

// New validates cfg and starts the vote queue's consumer.
func New(cfg Config) (*Host, error) {
	u, err := url.Parse(cfg.OriginURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, shared.Errorf(shared.EINVALID, "ORIGIN_URL must be an http(s) URL like http://127.0.0.1:8080, got %q", cfg.OriginURL)
	}
	if len(cfg.IngestKey.Secret) < sign.MinKeyLen || cfg.IngestKey.ID == "" {
		return nil, shared.Errorf(shared.EINVALID, "INGEST_KEY must be kid=secret with a secret of at least %d bytes", sign.MinKeyLen)
	}
	if len(cfg.EdgeID) > shared.MaxEdgeIDLen {
		return nil, shared.Errorf(shared.EINVALID, "EDGE_ID must be at most %d bytes", shared.MaxEdgeIDLen)
	}
	if cfg.QueueVotes <= 0 {
		cfg.QueueVotes = DefaultQueueVotes
	}
	if cfg.SpoolBytes <= 0 {
		cfg.SpoolBytes = DefaultSpoolBytes
	}
	if cfg.SpoolSegmentBytes <= 0 {
		cfg.SpoolSegmentBytes = min(cfg.SpoolBytes/8, 16<<20)
	}
	cfg.SpoolSegmentBytes = min(cfg.SpoolSegmentBytes, 1<<30) // record offsets are 32-bit
	if cfg.BatchVotes <= 0 {
		cfg.BatchVotes = DefaultBatchVotes
	}
	cfg.BatchVotes = min(cfg.BatchVotes, shared.MaxBatchVotes)
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.Senders <= 0 {
		cfg.Senders = DefaultSenders
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Every origin response tells how far this edge's clock is off (clock.go).
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = shared.ClockSkew
	}
	watch := &clockWatch{max: cfg.MaxClockSkew}
	client := *cfg.Client
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = &clockTransport{base: base, now: cfg.Now, watch: watch}
	cfg.Client = &client
	h := &Host{cfg: cfg, log: cfg.Logger, base: strings.TrimSuffix(cfg.OriginURL, "/"), clock: watch}
	h.polls = newCache(cfg.Client, cfg.Now, decodePoll)
	h.polls.maxAge = shared.MaxConfigAge // edge.Host.Poll's contract: announced closes rely on it
	h.results = newCache(cfg.Client, cfg.Now, nil)
	h.voted = newVotedCache(cfg, h.base)
	if h.q, err = newQueue(cfg, h.base+"/v1/ingest"); err != nil {
		return nil, err
	}
	if cfg.IdentityFlush <= 0 {
		cfg.IdentityFlush = DefaultIdentityFlush
	}
	h.startIdentityReports(cfg.IdentityFlush)
	return h, nil
}

func decodePoll(status int, body []byte) (any, error) {
	if status != http.StatusOK {
		return nil, nil
	}
	p := new(shared.Poll)
	if err := shared.UnmarshalPoll(body, p); err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "origin sent a bad poll config")
	}
	return p, nil
}

// Now implements edge.Host.
func (h *Host) Now() time.Time { return h.cfg.Now() }

func (h *Host) pollResponse(ctx context.Context, id string) (*response, error) {
	if !shared.ValidPollID(id) {
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	u := h.base + "/v1/polls/" + id
	r, err := h.polls.get(ctx, u, u, shared.ContentTypeMsgpack)
	if err != nil {
		return nil, err
	}
	switch {
	case r.status == http.StatusOK:
		return r, nil
	case r.status == http.StatusNotFound:
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	default:
		return nil, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d for poll config", r.status)
	}
}

// Poll implements edge.Host. The returned poll is shared: callers must not
// modify it.
func (h *Host) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	r, err := h.pollResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.value.(*shared.Poll), nil
}

// PollBytes returns the poll config in its wire encoding, straight from the
// cache (harness.PollEncoder). The bytes must not be modified.
func (h *Host) PollBytes(ctx context.Context, id string) ([]byte, error) {
	r, err := h.pollResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// Results implements edge.Host.
func (h *Host) Results(ctx context.Context, id string, msgpack bool) (*edge.Cached, error) {
	if !shared.ValidPollID(id) {
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	u := h.base + "/v1/polls/" + id + "/results"
	key, accept := id+" json", "application/json"
	if msgpack {
		key, accept = id+" msgpack", shared.ContentTypeMsgpack
	}
	r, err := h.results.get(ctx, key, u, accept)
	if err != nil {
		return nil, err
	}
	return &edge.Cached{Status: r.status, ContentType: r.contentType, ETag: r.etag, CacheControl: r.cacheControl, Body: r.body}, nil
}

// Submit implements edge.Host: it returns once v's batch is fsynced in the
// spool (senders then deliver it to the origin), or with EUNAVAILABLE when
// the spool is full, closed or failed to record the batch, in which case
// the vote is not recorded. It does not return early when ctx ends: only
// the fsync's outcome says whether the vote was recorded.
func (h *Host) Submit(_ context.Context, v *shared.Vote) error {
	if err := h.clock.check(); err != nil {
		h.log.Error("vote refused: edge clock off", "err", err)
		return err
	}
	return h.q.put(v)
}

// Allow implements edge.Host: the harness has no platform rate limiter.
func (h *Host) Allow(context.Context, string) bool { return true }

// Log implements edge.Host through slog.
func (h *Host) Log(level, msg string, attrs ...any) {
	l := slog.LevelInfo
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	h.log.Log(context.Background(), l, msg, attrs...)
}

// Stats counts the host's work.
type Stats struct {
	Queued        int    // votes submitted and not yet delivered (in the spool, or being written)
	Submitted     uint64 // votes recorded in the spool (Submit succeeded)
	QueueFull     uint64 // votes refused because the spool was full
	SpoolErrors   uint64 // batches whose spool write or fsync failed (their votes refused)
	SpoolBytes    int64  // bytes of the spool on disk
	SpoolSegments int    // spool segment files
	Recovered     uint64 // votes found undelivered in the spool at start
	Batches       uint64 // batches the origin applied
	Votes         uint64 // votes in those batches
	Retries       uint64 // failed batch sends that were retried
	Poison        uint64 // batches the origin refused with a 4xx (moved to the dead-letter file) or damaged on disk
	PoisonVotes   uint64 // votes in those batches
	Undelivered   uint64 // votes left in the spool when Close gave up
	PollFetches   uint64 // poll config requests to the origin
	ResultFetches uint64 // results requests to the origin
	VotedFetches  uint64 // vote-check requests to the origin
	Receipt       shared.Receipt
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	s := h.q.stats()
	s.PollFetches = h.polls.stats()
	s.ResultFetches = h.results.stats()
	s.VotedFetches = h.voted.stats()
	return s
}

// Close reports the identity figures counted since the last report, stops
// accepting votes, answers the ones already submitted, and
// delivers the spool until it is empty or ctx ends; what is left stays in
// the spool for the next start (logged, counted as Undelivered, and
// reported as an EUNAVAILABLE error).
func (h *Host) Close(ctx context.Context) error {
	h.stopIdentityReports(ctx)
	return h.q.close(ctx)
}
