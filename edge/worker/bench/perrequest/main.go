//go:build js && wasm && edgepoll_perrequest

// Command perrequest is the edge handler behind syumai/workers' own glue
// (workers-assets-gen), which starts a new Go instance for every request. It
// exists only so bench-edge can measure what our one-instance glue saves.
package main

import (
	"log/slog"
	"os"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/worker"
	"github.com/syumai/workers"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := edge.ConfigFromEnv(worker.Getenv)
	if err != nil {
		log.Error("config", "err", err.Error())
		os.Exit(1)
	}
	opt, err := worker.OptionsFromEnv(worker.Getenv)
	if err != nil {
		log.Error("config", "err", err.Error())
		os.Exit(1)
	}
	opt.Logger = log
	host := worker.NewHost(opt)
	workers.Serve(edge.New(cfg, host))
}
