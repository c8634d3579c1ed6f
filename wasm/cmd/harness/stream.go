package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/pages"
	"github.com/edgepoll/edgepoll/wasm/stream"
)

// streamPoll returns the poll id of GET /v1/polls/{id}/stream, or "".
func streamPoll(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/polls/")
	if !ok {
		return ""
	}
	id, ok := strings.CutSuffix(rest, "/stream")
	if !ok || !shared.ValidPollID(id) {
		return ""
	}
	return id
}

// serveStream answers GET /v1/polls/{id}/stream (docs/EDGE-API.md): each
// second it reads the results through the guest, from the same cache as
// the results route, and sends an event when the version changed. Until
// the first read succeeds the guest's answer (404, 403 hidden, 503) is the
// stream's.
func serveStream(streams context.Context, rc *fasthttp.RequestCtx, h *harness.Harness, id string, log *slog.Logger) {
	if !rc.IsGet() {
		rc.Response.Header.Set("Allow", "GET")
		rc.SetContentType("application/json")
		rc.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		rc.SetBody(shared.AppendErrorJSON(nil, shared.Errorf(shared.EINVALID, "method %s not allowed; use GET", rc.Method())))
		return
	}
	uri := "/v1/polls/" + id + "/results"
	remote := rc.RemoteAddr().String()
	origin := string(rc.Request.Header.Peek("Origin"))
	read := func(ctx context.Context, etag string) (*harness.Answer, error) {
		hdr := []string{"Accept", "application/json"}
		if etag != "" {
			hdr = append(hdr, "If-None-Match", etag)
		}
		if origin != "" {
			hdr = append(hdr, "Origin", origin)
		}
		return h.Get(ctx, uri, remote, hdr...)
	}
	ctx := context.WithoutCancel(rc)
	first, err := read(ctx, "")
	if err != nil {
		harness.WriteError(rc, err)
		return
	}
	// The results route's CORS answer holds for the stream too.
	for _, kv := range first.Header {
		if k := strings.ToLower(kv[0]); strings.HasPrefix(k, "access-control-") || k == "vary" {
			rc.Response.Header.Add(kv[0], kv[1])
		}
	}
	snap, perr := stream.Parse(first.Value("ETag"), first.Body)
	if first.Status != fasthttp.StatusOK || perr != nil {
		rc.SetStatusCode(first.Status)
		rc.SetContentType(first.Value("Content-Type"))
		if ra := first.Value("Retry-After"); ra != "" {
			rc.Response.Header.Set("Retry-After", ra)
		}
		rc.SetBody(first.Body)
		return
	}
	rc.SetContentType("text/event-stream; charset=utf-8")
	rc.Response.Header.Set("Cache-Control", "no-store")
	rc.Response.Header.Set("X-Accel-Buffering", "no")
	last := string(rc.Request.Header.Peek("Last-Event-ID"))
	// The server's write timeout is for ordinary answers; a stream lasts
	// its lifetime.
	rc.SetWriteDeadline(time.Now().Add(stream.Lifetime + time.Minute))
	rc.SetBodyStreamWriter(func(w *bufio.Writer) {
		next := func(ctx context.Context, etag string) (*stream.Snapshot, error) {
			a, err := read(ctx, etag)
			if err != nil || a.Status != fasthttp.StatusOK {
				return nil, err
			}
			return stream.Parse(a.Value("ETag"), a.Body)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(streams, cancel)
		defer stop()
		if err := stream.Write(sctx, w, snap, last, next, stream.Options{}); err != nil {
			log.Debug("results stream ended", "poll", id, "err", err)
		}
	})
}

// loadPages loads the pages' build directory. A missing default directory
// only means no pages (logged); a directory named by -web or WEB_DIR must load.
func loadPages(log *slog.Logger, dir string, fs *flag.FlagSet) (*pages.Site, error) {
	explicit := os.Getenv("WEB_DIR") != ""
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "web" })
	if dir == "" {
		return nil, nil
	}
	var allowed []string
	for _, o := range strings.Split(os.Getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o != "" {
			allowed = append(allowed, o)
		}
	}
	site, err := pages.Load(dir, allowed)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			log.Warn("no audience pages: build them with node scripts/build-web.mjs, or pass -web", "dir", dir)
			return nil, nil
		}
		return nil, fmt.Errorf("-web (WEB_DIR): %w", err)
	}
	return site, nil
}
