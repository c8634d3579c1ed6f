// Command wasmbench serves the two targets of make bench-wasm's wrk run: the
// harness (the edge guest under wazero, backed by benchfix.Host, whose
// Submit drops votes) and a bare fasthttp handler answering 202, and writes
// a file of vote bodies for distinct voters for wrk's Lua script to send.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/benchfix"
)

func main() {
	module := flag.String("module", "build/edge.wasm", "guest module")
	votes := flag.Int("votes", 400000, "vote bodies to write")
	out := flag.String("votes-file", "", "file to write vote bodies to, one per line")
	instances := flag.Int("instances", 0, "guest instances (default GOMAXPROCS)")
	flag.Parse()
	if err := run(*module, *out, *votes, *instances); err != nil {
		fmt.Fprintln(os.Stderr, "wasmbench:", err)
		os.Exit(1)
	}
}

func run(module, out string, votes, instances int) error {
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		for i := range votes {
			f.Write(benchfix.VoteBody(i))
			f.Write([]byte{'\n'})
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	wasm, err := os.ReadFile(module)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	h, err := harness.New(context.Background(), wasm, benchfix.NewHost(), harness.Config{Instances: instances, Env: benchfix.Lookup, Logger: quiet})
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &fasthttp.Server{Handler: h.ServeFastHTTP, NoDefaultDate: true}
	bare := &fasthttp.Server{NoDefaultDate: true, Handler: func(rc *fasthttp.RequestCtx) {
		rc.SetStatusCode(fasthttp.StatusAccepted)
		rc.SetContentType("application/json")
		rc.SetBodyString(`{"status":"accepted"}`)
	}}
	go hs.Serve(hl)
	go bare.Serve(bl)
	fmt.Printf("harness=http://%s bare=http://%s\n", hl.Addr(), bl.Addr())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	<-sigc
	hs.Shutdown()
	bare.Shutdown()
	return h.Close(context.Background())
}
