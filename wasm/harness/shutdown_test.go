package harness_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
)

// TestServerShutdownLetsVoteFinish: a vote in flight when the fasthttp
// server starts shutting down (SIGTERM of the harness binary) is answered
// by the guest (202), not cut short with a 500: fasthttp cancels every
// RequestCtx at shutdown, which must not reach the guest's time budget.
func TestServerShutdownLetsVoteFinish(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	host := edgetest.NewFakeHost()
	edgetest.Seed(host)
	entered, release := make(chan struct{}), make(chan struct{})
	host.SetSubmitFunc(func(context.Context, *shared.Vote) error {
		close(entered)
		<-release
		return nil
	})
	h := newHarness(t, module, host, harness.Config{Instances: 1,
		Env: envOf(map[string]string{"TOKEN_SECRET": strings.Repeat("k", 40), "COOKIE_SECURE": "false"})})
	tok := voterToken(t, h, "open1")

	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP}
	go srv.Serve(ln)
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://edge/v1/polls/open1/votes")
		req.Header.SetMethod(http.MethodPost)
		req.Header.SetContentType("application/json")
		req.SetBodyString(fmt.Sprintf(`{"token":%q,"choice":1}`, tok))
		err := c.Do(req, resp)
		got <- answer{resp.StatusCode(), string(resp.Body()), err}
	}()
	<-entered // the vote is in the host's hand-off
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown() }()
	for { // the shutdown has begun once the listener refuses connections
		conn, err := ln.Dial()
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the shutdown cancel the request contexts
	close(release)
	a := <-got
	if a.err != nil || a.code != 202 {
		t.Fatalf("vote in flight at server shutdown: %d %s (%v), want 202", a.code, a.body, a.err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Timeouts != 0 {
		t.Fatalf("stats %+v: the shutdown counted as a guest timeout", st)
	}
}
