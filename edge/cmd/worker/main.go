//go:build js && wasm

// Command worker is edgepoll's Cloudflare Worker: the edge handler hosted
// with Worker bindings. Build it with scripts/build-edge.sh (make edge); the
// glue in edge/worker/glue keeps one instance of it per isolate.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/commit"
	"github.com/edgepoll/edgepoll/edge/worker"
	"github.com/edgepoll/edgepoll/shared"
)

func main() {
	log := newLogger(worker.Getenv)
	slog.SetDefault(log)
	h, consume, err := build(log)
	if err != nil {
		// Misconfigured: answer every request with the reason and leave
		// queued batches in the queue, instead of dying in a restart loop.
		log.Error("edge worker misconfigured", "err", err.Error())
		body := shared.AppendErrorJSON(nil, shared.Wrap(shared.EUNAVAILABLE, err, "edge misconfigured"))
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
		})
		consume = func(_ context.Context, msgs []worker.Message) []time.Duration {
			delays := make([]time.Duration, len(msgs))
			for i := range delays {
				delays[i] = time.Minute // keep them queued until the config is fixed
			}
			return delays
		}
	}
	worker.Serve(wrap(h), consume)
}

// wrap wraps the handler; only the tests' panic check (paniccheck.go) sets it.
var wrap = func(h http.Handler) http.Handler { return h }

// newLogger returns the Worker's logger: one JSON object a line on the
// console, which Workers Logs and Logpush index by field. Every line names
// the service and the edge (EDGE_ID); the other stable fields are poll,
// route, status, code, batch, votes and err (docs/METRICS.md). LOG_LEVEL
// sets the lowest level logged (default info; warn drops the per-batch lines).
func newLogger(get func(string) string) *slog.Logger {
	level := slog.LevelInfo
	v := get(worker.VarLogLevel)
	bad := v != "" && level.UnmarshalText([]byte(v)) != nil
	if bad {
		level = slog.LevelInfo
	}
	edgeID := get("EDGE_ID")
	if edgeID == "" {
		edgeID = "cf"
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).
		With("service", "edgepoll-edge", "edge", edgeID)
	if bad {
		log.Warn("LOG_LEVEL not understood; logging from info", "value", v)
	}
	return log
}

// build wires the handler and the queue consumer from the Worker's env.
func build(log *slog.Logger) (http.Handler, worker.Consumer, error) {
	cfg, err := edge.ConfigFromEnv(worker.Getenv)
	if err != nil {
		return nil, nil, err
	}
	opt, err := worker.OptionsFromEnv(worker.Getenv)
	if err != nil {
		return nil, nil, err
	}
	opt.Logger = log
	host := worker.NewHost(opt)
	// Group commit: votes admitted within a few ms travel as one MessagePack
	// batch in one queue message, sent by the group's leader request.
	wait, err := commitWait(worker.Getenv(varCommitWait))
	if err != nil {
		return nil, nil, err
	}
	host.SetSubmit(commit.New(host.SendBatch, commit.Options{EdgeID: cfg.EdgeID, MaxDelay: wait}).Submit)
	return edge.New(cfg, host), host.Consume, nil
}
