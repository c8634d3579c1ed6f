// Command origin runs the edgepoll aggregator: signed batch ingest, cached
// public reads, the admin API and the operations endpoints, over Redis.
//
// Configuration comes from flags, which override the environment:
//
//	-listen       LISTEN_ADDR   address to listen on (default 127.0.0.1:8080)
//	-redis        REDIS_URL     redis://host:port/db, rediss://…, or host:port,host:port (Cluster)
//	-ingest-keys  INGEST_KEYS   batch signing keys "kid=secret,kid2=secret2" (secrets ≥ 32 bytes)
//	-admin-token  ADMIN_TOKEN   bearer token of the admin API (≥ 16 bytes)
//	-invite-key   INVITE_KEY    optional key of the hashes invite codes are stored under (≥ 32 bytes); invite polls need it
//	-log-format   LOG_FORMAT    json or text (default json)
//	-log-level    LOG_LEVEL     debug, info, warn or error (default info)
//	-durability   DURABILITY    none, fsync or replica (default fsync): when a batch is acknowledged
//	-durability-trust  DURABILITY_TRUST  fsync: trust Redis's persistence without CONFIG GET
//	-replicas     REPLICAS      replica: replicas that must have a batch (default 1)
//	-replica-timeout  REPLICA_TIMEOUT  replica: how long a batch waits for them (default 500ms)
//
// Prefer the environment for secrets: flags are visible in the process list.
// A bad configuration exits with status 2 and a message saying what is wrong;
// so does a Redis that cannot give the durability asked for.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgepoll/edgepoll/origin/redisstore"
	"github.com/edgepoll/edgepoll/origin/server"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// config is the validated configuration.
type config struct {
	listen          string
	redisURL        string
	keys            []sign.Key
	adminToken      string
	inviteKey       []byte
	logger          *slog.Logger
	shutdownTimeout time.Duration
	signWindow      time.Duration
	durability      redisstore.Durability
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// usageError is a configuration problem: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// parseConfig reads flags over environment and validates everything.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", envOr(getenv, "LISTEN_ADDR", "127.0.0.1:8080"), "listen address `host:port` (env LISTEN_ADDR)")
	redisURL := fs.String("redis", envOr(getenv, "REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis `url`: redis://host:port/db, rediss://…, or host:port,host:port for Cluster (env REDIS_URL)")
	keys := fs.String("ingest-keys", "", "batch signing `keys` kid=secret,kid2=secret2, secrets >= 32 bytes (env INGEST_KEYS; prefer the env)")
	token := fs.String("admin-token", "", "admin API bearer `token`, >= 16 bytes (env ADMIN_TOKEN; prefer the env)")
	inviteKey := fs.String("invite-key", "", "`key` of the hashes invite codes are stored under, >= 32 bytes, the same for every origin, kept for good (env INVITE_KEY; prefer the env)")
	logFormat := fs.String("log-format", envOr(getenv, "LOG_FORMAT", "json"), "log format: json or text (env LOG_FORMAT)")
	logLevel := fs.String("log-level", envOr(getenv, "LOG_LEVEL", "info"), "log level: debug, info, warn, error (env LOG_LEVEL)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long to wait for in-flight requests on SIGTERM")
	window := fs.Duration("sign-window", sign.DefaultWindow, "accepted batch timestamp skew; replayed batch ids are remembered this long")
	durability := fs.String("durability", envOr(getenv, "DURABILITY", string(redisstore.DurabilityFsync)),
		"`mode` of acknowledging a batch: none (once applied in Redis's memory), fsync (Redis must run appendonly yes, appendfsync always) or replica (WAIT for -replicas) (env DURABILITY)")
	trustEnv := getenv("DURABILITY_TRUST")
	trustDefault, trustErr := strconv.ParseBool(strings.TrimSpace(trustEnv))
	trust := fs.Bool("durability-trust", trustErr == nil && trustDefault, "fsync: trust a Redis that refuses CONFIG GET to run appendonly yes, appendfsync always (env DURABILITY_TRUST=1)")
	replicas := fs.String("replicas", getenv("REPLICAS"), "replica: acknowledge a batch once `N` replicas have it (default 1) (env REPLICAS)")
	replicaTimeout := fs.String("replica-timeout", getenv("REPLICA_TIMEOUT"), "replica: answer 503 when the replicas lack a batch after this `duration` (default 500ms, at most 2s) (env REPLICA_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: origin [flags]\n\nRuns the edgepoll origin aggregator. Flags override the environment.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	// Secrets fall back to the environment after parsing, so usage output
	// never prints them as defaults.
	if *keys == "" {
		*keys = getenv("INGEST_KEYS")
	}
	if *token == "" {
		*token = getenv("ADMIN_TOKEN")
	}
	if *inviteKey == "" {
		*inviteKey = getenv("INVITE_KEY")
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c := &config{listen: *listen, redisURL: strings.TrimSpace(*redisURL), adminToken: *token, shutdownTimeout: *shutdown, signWindow: *window}

	if _, port, err := net.SplitHostPort(c.listen); err != nil || port == "" {
		return nil, usagef("listen address %q: want host:port", c.listen)
	}
	if err := validateRedisURL(c.redisURL); err != nil {
		return nil, err
	}
	if *keys == "" {
		return nil, usagef("no ingest keys: set INGEST_KEYS or -ingest-keys to kid=secret (secret >= %d bytes)", sign.MinKeyLen)
	}
	k, err := sign.ParseKeys(*keys)
	if err != nil {
		return nil, usagef("ingest keys: %s", shared.ErrorMessage(err))
	}
	c.keys = k
	if len(c.adminToken) < server.MinAdminTokenLen {
		return nil, usagef("admin token: set ADMIN_TOKEN or -admin-token to at least %d bytes", server.MinAdminTokenLen)
	}
	if c.inviteKey = []byte(*inviteKey); len(c.inviteKey) > 0 && len(c.inviteKey) < invite.MinKeyLen {
		return nil, usagef("invite key: INVITE_KEY or -invite-key must be at least %d bytes", invite.MinKeyLen)
	}
	if c.shutdownTimeout <= 0 || c.signWindow <= 0 {
		return nil, usagef("durations must be positive")
	}
	if trustEnv != "" && trustErr != nil {
		return nil, usagef("DURABILITY_TRUST %q: want 1, true, 0 or false", trustEnv)
	}
	trustSet := trustEnv != ""
	fs.Visit(func(f *flag.Flag) { trustSet = trustSet || f.Name == "durability-trust" })
	if c.durability, err = parseDurability(*durability, *trust, trustSet, *replicas, *replicaTimeout); err != nil {
		return nil, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, usagef("log level %q: want debug, info, warn or error", *logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "json":
		c.logger = slog.New(slog.NewJSONHandler(stderr, opts))
	case "text":
		c.logger = slog.New(slog.NewTextHandler(stderr, opts))
	default:
		return nil, usagef("log format %q: want json or text", *logFormat)
	}
	return c, nil
}

// parseDurability validates the durability settings. Settings of another
// mode than the one chosen are refused rather than ignored.
func parseDurability(mode string, trust, trustSet bool, replicas, timeout string) (redisstore.Durability, error) {
	m, err := redisstore.ParseDurabilityMode(strings.TrimSpace(mode))
	if err != nil {
		return redisstore.Durability{}, usagef("%s (-durability or DURABILITY)", shared.ErrorMessage(err))
	}
	d := redisstore.Durability{Mode: m, Trust: trust}
	if trustSet && trust {
		if m != redisstore.DurabilityFsync {
			return d, usagef("-durability-trust (DURABILITY_TRUST) applies to -durability fsync only, not %s", m)
		}
	}
	if m != redisstore.DurabilityReplica {
		if replicas != "" || timeout != "" {
			return d, usagef("-replicas and -replica-timeout (REPLICAS, REPLICA_TIMEOUT) apply to -durability replica only, not %s", m)
		}
		return d, nil
	}
	d.Replicas, d.ReplicaTimeout = 1, redisstore.DefaultReplicaTimeout
	if replicas != "" {
		if d.Replicas, err = strconv.Atoi(replicas); err != nil || d.Replicas < 1 || d.Replicas > redisstore.MaxReplicas {
			return d, usagef("replicas %q: want 1..%d (-replicas or REPLICAS)", replicas, redisstore.MaxReplicas)
		}
	}
	if timeout != "" {
		if d.ReplicaTimeout, err = time.ParseDuration(timeout); err != nil || d.ReplicaTimeout < time.Millisecond || d.ReplicaTimeout > redisstore.MaxReplicaTimeout {
			return d, usagef("replica timeout %q: want a duration from 1ms to %v (-replica-timeout or REPLICA_TIMEOUT)", timeout, redisstore.MaxReplicaTimeout)
		}
	}
	return d, nil
}

// validateRedisURL checks the shape of REDIS_URL before any connection.
func validateRedisURL(s string) error {
	if s == "" {
		return usagef("redis url is empty: set REDIS_URL or -redis")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return usagef("redis url: cannot parse it (want redis://host:port/db)")
		}
		if u.Scheme != "redis" && u.Scheme != "rediss" {
			return usagef("redis url: scheme %q not supported; want redis://, rediss:// or a host:port list", u.Scheme)
		}
		if u.Host == "" {
			return usagef("redis url: no host (want redis://host:port/db)")
		}
		return nil
	}
	for _, a := range strings.Split(s, ",") {
		if _, port, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || port == "" {
			return usagef("redis url: %q is not host:port (want redis://host:port/db or host:port,host:port for Cluster)", strings.TrimSpace(a))
		}
	}
	return nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "origin: %v\n", err)
		return 2
	}
	log := cfg.logger
	slog.SetDefault(log)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	store, err := redisstore.Open(ctx, cfg.redisURL)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "origin: %v\n", err)
		if shared.ErrorCode(err) == shared.EINVALID {
			return 2
		}
		return 1
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	err = store.SetDurability(ctx, cfg.durability)
	cancel()
	if err != nil {
		store.Close()
		if errors.Is(err, redisstore.ErrNotDurable) || shared.ErrorCode(err) == shared.EINVALID {
			fmt.Fprintf(stderr, "origin: -durability %s: %s (choose the durability this Redis gives with -durability/DURABILITY, or reconfigure Redis)\n",
				cfg.durability.Mode, shared.ErrorMessage(err))
			return 2
		}
		fmt.Fprintf(stderr, "origin: %v\n", err)
		return 1
	}
	srv, err := server.New(server.Config{
		Store:      store,
		Verifier:   sign.NewVerifier(cfg.keys, cfg.signWindow, nil),
		AdminToken: cfg.adminToken,
		Logger:     log,
		Durability: store,
		InviteKey:  cfg.inviteKey,
	})
	if err != nil {
		store.Close()
		fmt.Fprintf(stderr, "origin: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		store.Close()
		fmt.Fprintf(stderr, "origin: listen: %v\n", err)
		return 1
	}
	log.Info("listening", "addr", ln.Addr().String(), "redis", redactURL(cfg.redisURL), "ingest_keys", len(cfg.keys),
		"durability", string(cfg.durability.Mode))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	code := 0
	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		code = 1
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		if err := srv.Shutdown(sctx); err != nil {
			log.Error("shutdown incomplete", "err", err)
			code = 1
		}
		cancel()
		<-errc
	}
	if err := store.Close(); err != nil {
		log.Warn("closing store", "err", err)
	}
	log.Info("stopped")
	return code
}

// redactURL hides a password in a redis URL for logging.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
