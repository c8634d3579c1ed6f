// Command harness serves edgepoll's edge handler locally, as the wasm guest
// (wasm/guest) under wazero, with the origin behind it: no Node, no workerd.
//
//	harness -module build/edge.wasm -listen 127.0.0.1:8788
//
// Flags override the environment:
//
//	-listen     LISTEN_ADDR   address to serve on (default 127.0.0.1:8788)
//	-module     EDGE_WASM     the guest module (default build/edge.wasm; make wasm builds it)
//	-instances  INSTANCES     guest instances, each an isolate (default 16, at least GOMAXPROCS)
//	-timeout    GUEST_TIMEOUT time budget per request inside the guest (default 2s)
//	-no-budget                no time budget: about 10% faster guest code, but a guest
//	                          that loops forever keeps its instance (trusted guests only)
//	-origin     ORIGIN_URL    the origin's base URL (required)
//	-spool      SPOOL_DIR     the vote spool's directory (required; created if missing)
//	-spool-max  SPOOL_MAX     the spool's size bound, e.g. 512MiB or 2GiB (default 1GiB);
//	                          while it is reached, votes are answered 503
//	-shutdown-timeout         how long SIGTERM may spend delivering the spool (default 30s;
//	                          -drain is the old name)
//	-web        WEB_DIR       the audience pages, built by scripts/build-web.mjs (default
//	                          build/web; served at /p/{id}, /p/{id}/screen, /embed.js, /assets/)
//	            INGEST_KEY    kid=secret signing batches for the origin (required)
//	            TOKEN_SECRET, ALLOWED_ORIGINS, EDGE_ID, RATE_IP_VOTES, RATE_IP_TOKENS,
//	            RATE_VOTER, RATE_CHECK, DEDUPE_CAPACITY, MAX_BODY_BYTES, COOKIE_SECURE: the
//	            edge configuration, passed to the guest (see edge.ConfigFromEnv)
//
// A vote is answered 202 only once its batch is fsynced in the spool, so an
// acknowledged vote survives kill -9 of the harness: the next start on the
// same -spool delivers what is left (the origin's replay keys and dedupe
// make any redelivery harmless). A 503 means the vote was not recorded.
//
// It serves GET /v1/polls/{id}/stream (results as Server-Sent Events, read
// through the guest from the results cache) and the audience pages itself.
// It also serves /healthz and /metrics (Prometheus text). SIGINT or SIGTERM
// stops it gracefully: it stops taking requests, answers the votes in
// flight, then delivers the spool to the origin for up to -shutdown-timeout;
// whatever is still undelivered stays in the spool for the next start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared/sign"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/originhost"
)

func main() {
	// LOG_LEVEL=debug also logs every batch delivered, by the id the
	// origin logs and the ledger records.
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("harness: " + err.Error())
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// guestEnv is what the guest's config import may read: the edge
// configuration, never the ingest key or admin secrets.
var guestEnv = func() map[string]bool {
	m := make(map[string]bool, len(harness.EnvKeys))
	for _, k := range harness.EnvKeys {
		m[k] = true
	}
	return m
}()

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	listen := fs.String("listen", env("LISTEN_ADDR", "127.0.0.1:8788"), "address to serve on")
	module := fs.String("module", env("EDGE_WASM", "build/edge.wasm"), "guest wasm module")
	// An instance waits in the vote hand-off for its batch's fsync, so the
	// harness needs about as many instances as concurrent voters: 16
	// (≈ 15 MB each) kept ≈ 10k votes/s on 2 cores where 2 managed 3.7k.
	defInst, _ := strconv.Atoi(env("INSTANCES", strconv.Itoa(max(16, runtime.GOMAXPROCS(0)))))
	instances := fs.Int("instances", defInst, "guest instances (isolates)")
	defTimeout, _ := time.ParseDuration(env("GUEST_TIMEOUT", "2s"))
	timeout := fs.Duration("timeout", defTimeout, "time budget per request inside the guest")
	origin := fs.String("origin", env("ORIGIN_URL", ""), "origin base URL")
	noBudget := fs.Bool("no-budget", false, "run the guest without a time budget (faster; trusted guests only)")
	spool := fs.String("spool", env("SPOOL_DIR", ""), "vote spool directory (required)")
	spoolMax := fs.String("spool-max", env("SPOOL_MAX", "1GiB"), "spool size bound (bytes, or with KiB, MiB, GiB)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown may take to deliver the spool")
	fs.DurationVar(drain, "drain", 30*time.Second, "old name of -shutdown-timeout")
	// A testing aid: the fault suite skews the edge's clock with it.
	defOffset, _ := time.ParseDuration(env("CLOCK_OFFSET", "0s"))
	offset := fs.Duration("clock-offset", defOffset, "testing aid: shift the edge's clock (the guest's and the spool's) by this much, e.g. 2m or -2m")
	webDir := fs.String("web", env("WEB_DIR", "build/web"), "the audience pages' build directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	site, err := loadPages(log, *webDir, fs)
	if err != nil {
		return err
	}
	if *spool == "" {
		return errors.New("-spool (SPOOL_DIR) is required: the directory where acknowledged votes wait for the origin")
	}
	maxBytes, err := parseSize(*spoolMax)
	if err != nil {
		return fmt.Errorf("-spool-max (SPOOL_MAX): %w", err)
	}
	keys, err := sign.ParseKeys(os.Getenv("INGEST_KEY"))
	if err != nil {
		return fmt.Errorf("INGEST_KEY: %w", err)
	}
	if len(keys) != 1 {
		return errors.New("INGEST_KEY: give exactly one kid=secret")
	}
	wasm, err := os.ReadFile(*module)
	if err != nil {
		return fmt.Errorf("read guest module (build it with make wasm): %w", err)
	}
	// voting counts the vote requests (POSTs) in progress: with each guest
	// instance waiting in one Submit at a time, no more votes than
	// min(voting, instances) can join a batch, which then need not wait.
	var voting atomic.Int64
	hcfg := originhost.Config{
		OriginURL:  *origin,
		IngestKey:  keys[0],
		EdgeID:     env("EDGE_ID", "harness"),
		SpoolDir:   *spool,
		SpoolBytes: maxBytes,
		Submitters: func() int { return min(int(voting.Load()), *instances) },
		Logger:     log,
	}
	if *offset != 0 {
		skew := *offset
		hcfg.Now = func() time.Time { return time.Now().Add(skew) }
		log.Warn("clock offset: the edge's clock is shifted (a testing aid)", "offset", skew)
	}
	host, err := originhost.New(hcfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	h, err := harness.New(ctx, wasm, host, harness.Config{
		Instances: *instances,
		Timeout:   *timeout,
		NoBudget:  *noBudget,
		Logger:    log,
		Env: func(k string) (string, bool) {
			if !guestEnv[k] {
				return "", false
			}
			return os.LookupEnv(k)
		},
	})
	if err != nil {
		host.Close(ctx)
		return err
	}
	log.Info("guest ready", "module", *module, "instances", h.Instances(), "took", time.Since(start).Round(time.Millisecond), "cache", harness.DefaultCacheDir())

	// streams ends every results stream at shutdown (clients reconnect).
	streams, endStreams := context.WithCancel(ctx)
	defer endStreams()
	mx := newHarnessMetrics(h, host)
	srv := &fasthttp.Server{
		Handler: func(rc *fasthttp.RequestCtx) {
			start := time.Now()
			path := string(rc.Path())
			page := false
			switch path {
			case "/healthz":
				rc.SetContentType("text/plain")
				rc.SetBodyString("ok\n")
			case "/metrics":
				mx.handler(rc)
			default:
				if site != nil && site.Serve(rc) {
					page = true
					break
				}
				if id := streamPoll(path); id != "" {
					serveStream(streams, rc, h, id, log)
					break
				}
				if rc.IsPost() {
					voting.Add(1)
					defer voting.Add(-1)
				}
				h.ServeFastHTTP(rc)
			}
			mx.observe(routeOf(path, page), rc.Response.StatusCode(), time.Since(start))
		},
		Name:               "edgepoll-harness",
		MaxRequestBodySize: 64 << 10,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        2 * time.Minute,
		NoDefaultDate:      true,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe(*listen) }()
	log.Info("listening", "addr", *listen, "origin", *origin, "spool", *spool)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		host.Close(ctx)
		return fmt.Errorf("serve %s: %w", *listen, err)
	case s := <-sigc:
		log.Info("shutting down", "signal", s.String())
	}
	signal.Stop(sigc)
	endStreams()
	sctx, cancel := context.WithTimeout(ctx, *drain)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := h.Close(sctx); err != nil {
		log.Warn("guest shutdown", "err", err)
	}
	// Votes still undelivered stay in the spool for the next start: logged
	// by Close, not an error.
	_ = host.Close(sctx)
	st := host.Stats()
	log.Info("stopped", "votes_delivered", st.Votes, "batches", st.Batches, "poison_batches", st.Poison, "votes_left_in_spool", st.Undelivered)
	return nil
}

// parseSize reads a byte count: digits, optionally followed by KiB, MiB or
// GiB (or K, M, G; all powers of 1024).
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGiBkmgb")
	mult := int64(1)
	switch strings.ToLower(strings.TrimPrefix(s, num)) {
	case "", "b":
	case "k", "kib", "kb":
		mult = 1 << 10
	case "m", "mib", "mb":
		mult = 1 << 20
	case "g", "gib", "gb":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%q: want a size like 1073741824, 512MiB or 2GiB", s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q: want a positive size like 1073741824, 512MiB or 2GiB", s)
	}
	return n * mult, nil
}
