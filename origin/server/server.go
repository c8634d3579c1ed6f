// Package server is the origin's HTTP front: signed batch ingest, cached
// public reads, the admin API and the operations endpoints, on fasthttp. It
// is the only origin package that imports fasthttp; all state lives behind
// origin.Store.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// MinAdminTokenLen is the shortest admin token the server accepts.
const MinAdminTokenLen = 16

// Default timings.
const (
	DefaultFreshness    = 250 * time.Millisecond
	DefaultApplyTimeout = 10 * time.Second
	DefaultReadTimeout  = 5 * time.Second
)

// maxAdminBody bounds admin request bodies (poll JSON).
const maxAdminBody = 64 << 10

// Cache-Control values of the public read endpoints.
const (
	cacheControlPoll    = "public, max-age=3, stale-while-revalidate=5" // max-age+swr = shared.MaxConfigAge
	cacheControlResults = "public, max-age=1, stale-while-revalidate=5"
)

// Config wires a Server.
type Config struct {
	// Store holds all state. Required.
	Store origin.Store
	// Verifier authenticates ingest batches. Required.
	Verifier *sign.Verifier
	// AdminToken guards /v1/admin/; at least MinAdminTokenLen bytes. Required.
	AdminToken string
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the server's metrics; nil means a new registry.
	Registry *prometheus.Registry
	// Freshness is how long a cached poll or snapshot is served without
	// asking the store; zero means DefaultFreshness.
	Freshness time.Duration
	// ApplyTimeout bounds one batch apply; zero means DefaultApplyTimeout.
	ApplyTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Durability, when set, is the store's durability promise: /readyz
	// answers 503 while it does not hold, and its mode and WAIT shortfalls
	// are exported as metrics.
	Durability Durability
	// InviteKey keys the hashes invite codes are stored under (at least
	// invite.MinKeyLen bytes). Without it the invite endpoints answer 503.
	// Every origin process of a deployment needs the same key, for good:
	// codes hashed under another key no longer redeem.
	InviteKey []byte
}

// Durability is a store's promise about acknowledged batches.
type Durability interface {
	// DurabilityMode names the mode in force (none, fsync, replica).
	DurabilityMode() string
	// CheckDurability returns nil while the promise holds; it must be cheap.
	CheckDurability(ctx context.Context) error
	// WaitShortfalls counts batches refused because too few replicas had them.
	WaitShortfalls() uint64
}

// Server serves the origin HTTP API. Create it with New.
type Server struct {
	store        origin.Store
	verifier     *sign.Verifier
	adminHash    [sha256.Size]byte
	log          *slog.Logger
	now          func() time.Time
	freshness    time.Duration
	applyTimeout time.Duration
	metrics      *metrics
	ops          *opsCollector
	polls        cache
	results      cache
	http         *fasthttp.Server
	metricsH     fasthttp.RequestHandler
	durability   Durability
	inviteKey    []byte
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, shared.Errorf(shared.EINVALID, "server: a store is required")
	}
	if cfg.Verifier == nil {
		return nil, shared.Errorf(shared.EINVALID, "server: an ingest verifier is required")
	}
	if len(cfg.AdminToken) < MinAdminTokenLen {
		return nil, shared.Errorf(shared.EINVALID, "server: the admin token must be at least %d bytes", MinAdminTokenLen)
	}
	s := &Server{
		store:        cfg.Store,
		verifier:     cfg.Verifier,
		adminHash:    sha256.Sum256([]byte(cfg.AdminToken)),
		log:          cfg.Logger,
		now:          cfg.Now,
		freshness:    cfg.Freshness,
		applyTimeout: cfg.ApplyTimeout,
		durability:   cfg.Durability,
		inviteKey:    cfg.InviteKey,
	}
	if len(cfg.InviteKey) > 0 && len(cfg.InviteKey) < invite.MinKeyLen {
		return nil, shared.Errorf(shared.EINVALID, "server: the invite key must be at least %d bytes", invite.MinKeyLen)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.freshness <= 0 {
		s.freshness = DefaultFreshness
	}
	if s.applyTimeout <= 0 {
		s.applyTimeout = DefaultApplyTimeout
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)
	s.ops = newOpsCollector(s)
	reg.MustRegister(s.ops)
	if s.durability != nil {
		registerDurability(reg, s.durability)
	}
	s.metricsH = metricsHandler(reg)
	s.polls.init()
	s.results.init()
	s.http = &fasthttp.Server{
		Handler:                       s.Handler(),
		ErrorHandler:                  s.errorHandler,
		Name:                          "edgepoll-origin",
		MaxRequestBodySize:            shared.MaxBatchBytes,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  60 * time.Second,
		IdleTimeout:                   90 * time.Second,
		NoDefaultDate:                 false,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		ReadBufferSize:                8 << 10,
		TCPKeepalive:                  true,
		DisableHeaderNamesNormalizing: false,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops accepting connections and waits for in-flight requests to
// finish (or ctx to end). A batch whose apply has started is either finished
// and acknowledged, or its connection is closed without an answer. It does
// not close the store; the caller does that after Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.ShutdownWithContext(ctx) }

// Handler returns the server's request router.
func (s *Server) Handler() fasthttp.RequestHandler { return s.route }

func (s *Server) route(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	start := time.Now()
	name := s.dispatch(ctx, path)
	s.metrics.observe(name, ctx.Response.StatusCode(), time.Since(start))
}

// dispatch serves the request and returns the route label for metrics.
func (s *Server) dispatch(ctx *fasthttp.RequestCtx, path string) string {
	switch {
	case path == "/v1/ingest":
		if !s.allow(ctx, fasthttp.MethodPost) {
			return "ingest"
		}
		s.ingest(ctx)
		return "ingest"
	case strings.HasPrefix(path, "/v1/polls/"):
		rest := path[len("/v1/polls/"):]
		id, sub, _ := strings.Cut(rest, "/")
		switch sub {
		case "":
			if s.allow(ctx, fasthttp.MethodGet, fasthttp.MethodHead) {
				s.getPoll(ctx, id)
			}
			return "poll"
		case "results":
			if s.allow(ctx, fasthttp.MethodGet, fasthttp.MethodHead) {
				s.getResults(ctx, id)
			}
			return "results"
		case "identity-stats":
			if s.allow(ctx, fasthttp.MethodPost) {
				s.postIdentityStats(ctx, id)
			}
			return "identity_stats"
		case "invites/redeem":
			if s.allow(ctx, fasthttp.MethodPost) {
				s.redeemInvite(ctx, id)
			}
			return "invite_redeem"
		default:
			if voter, ok := strings.CutPrefix(sub, "voters/"); ok {
				if s.allow(ctx, fasthttp.MethodGet) {
					s.getVoted(ctx, id, voter)
				}
				return "voter"
			}
		}
	case strings.HasPrefix(path, "/v1/admin/"):
		if !s.authorized(ctx) {
			s.fail(ctx, shared.Errorf(shared.EUNAUTHORIZED, "missing or wrong admin bearer token"))
			return "admin"
		}
		return s.admin(ctx, path[len("/v1/admin/"):])
	case path == "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
		return "healthz"
	case path == "/readyz":
		s.ready(ctx)
		return "readyz"
	case path == "/metrics":
		s.metricsH(ctx)
		return "metrics"
	}
	s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "no route for %s", truncate(path, 100)))
	return "not_found"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// allow answers 405 unless the method is one of methods.
func (s *Server) allow(ctx *fasthttp.RequestCtx, methods ...string) bool {
	m := ctx.Method()
	for _, want := range methods {
		if string(m) == want {
			return true
		}
	}
	ctx.Response.Header.Set("Allow", strings.Join(methods, ", "))
	s.failStatus(ctx, fasthttp.StatusMethodNotAllowed,
		shared.Errorf(shared.EINVALID, "method %s not allowed; use %s", truncate(string(m), 16), strings.Join(methods, " or ")))
	return false
}

// authorized compares the bearer token in constant time. Both sides are
// hashed first so neither the token's length nor its bytes leak by timing.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return false
	}
	got := sha256.Sum256(h[len(prefix):])
	return subtle.ConstantTimeCompare(got[:], s.adminHash[:]) == 1
}

func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.pingStore(c); err != nil {
		s.metrics.storeError("ping")
		s.log.Warn("readiness check failed", "err", err)
		s.fail(ctx, shared.Wrap(shared.EUNAVAILABLE, err, "store unreachable"))
		return
	}
	if s.durability != nil {
		if err := s.durability.CheckDurability(c); err != nil {
			s.log.Warn("readiness check failed: durability", "mode", s.durability.DurabilityMode(), "err", err)
			s.fail(ctx, err)
			return
		}
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ready"}`)
}

// errorHandler answers requests fasthttp could not parse, in JSON.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var tooLarge bool
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		tooLarge = true
	}
	if tooLarge {
		s.metrics.batch("too_large")
		s.fail(ctx, shared.Errorf(shared.ETOOLARGE, "request body larger than %d bytes", shared.MaxBatchBytes))
	} else {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "malformed HTTP request"))
	}
	ctx.SetConnectionClose()
}

// fail writes err as a JSON error with the status its code maps to. Internal
// errors are logged and answered with a generic message.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	s.failStatus(ctx, shared.HTTPStatus(shared.ErrorCode(err)), err)
}

func (s *Server) failStatus(ctx *fasthttp.RequestCtx, status int, err error) {
	code := shared.ErrorCode(err)
	if code == shared.EINTERNAL || code == shared.EUNAVAILABLE {
		s.log.Error("request failed", "method", string(ctx.Method()), "path", truncate(string(ctx.Path()), 200), "status", status, "err", err)
	}
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Del(fasthttp.HeaderETag)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(shared.AppendErrorJSON(make([]byte, 0, 96), err))
}

// storeErr classifies a store error for the client: codes from the store
// are kept; anything else is an internal error (logged, hidden) and counted.
func (s *Server) storeErr(op string, err error) error {
	switch shared.ErrorCode(err) {
	case shared.EINTERNAL, shared.EUNAVAILABLE:
		s.metrics.storeError(op)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return shared.Wrap(shared.EUNAVAILABLE, err, "store timed out")
	}
	return err
}

// readCtx returns a context for one store read.
func (s *Server) readCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), DefaultReadTimeout)
}
