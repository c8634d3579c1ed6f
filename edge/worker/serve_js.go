//go:build js && wasm

package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall/js"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// ready tells the glue that the Go program has registered its handlers.
//
//go:wasmimport workers ready
func ready()

// request holds one event's own handles. It travels in the request's
// context.Context, never in a global, so concurrent requests in the isolate
// never see each other's env or ExecutionContext.
type request struct {
	env  js.Value // the event's bindings and vars
	ectx js.Value // the event's ExecutionContext (waitUntil)

	mu     sync.Mutex
	served string // how a cached read was served, for HeaderCache
}

type requestKey struct{}

// withRequest returns ctx carrying r.
func withRequest(ctx context.Context, r *request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// requestFrom returns the event handles in ctx, or nil.
func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

func (r *request) setServed(s string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	// A request that reads several cached values reports the worst.
	if r.served == "" || s == servedMiss || (s == servedStale && r.served == servedHit) {
		r.served = s
	}
	r.mu.Unlock()
}

// Message is one queue message as the consumer sees it.
type Message struct {
	ID       string
	Body     []byte // nil when the body was not bytes
	Attempts int    // 1 on the first delivery
}

// Consumer handles one queue delivery and returns, per message, 0 to ack it
// or the delay before it is delivered again.
type Consumer func(msgs []Message) []time.Duration

// Serve registers h as the Worker's fetch handler and consume as its queue
// consumer with the glue, tells the glue the instance is ready and blocks
// forever: the glue keeps this one instance for the isolate's lifetime.
func Serve(h http.Handler, consume Consumer) {
	binding := js.Global().Get("context").Get("binding")
	binding.Set("handleRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 7 {
			panic(fmt.Sprintf("handleRequest: want 7 arguments, got %d", len(args)))
		}
		go serveOne(h, args)
		return nil
	}))
	binding.Set("handleQueue", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 2 {
			panic(fmt.Sprintf("handleQueue: want 2 arguments, got %d", len(args)))
		}
		// Copy the messages while this event is current; settle via the slot.
		arr, slot := args[0], args[1]
		msgs := make([]Message, arr.Length())
		for i := range msgs {
			m := arr.Index(i)
			msgs[i] = Message{ID: m.Get("id").String(), Attempts: m.Get("attempts").Int()}
			msgs[i].Body, _ = bytesFrom(m.Get("body"))
		}
		go consumeOne(consume, msgs, slot)
		return nil
	}))
	ready()
	select {}
}

// serveOne runs one request: args are method, url, headers (flat name/value
// array), body (Uint8Array or null), env, ctx and the request's slot. The
// answer, [status, headers, body], is written into slot.value (or an Error
// into slot.error) and slot.done set; the request's own JS side collects it,
// so no promise is settled from another request's event.
func serveOne(h http.Handler, args []js.Value) {
	slot := args[6]
	resolve := func(v js.Value) {
		slot.Set("value", v)
		slot.Set("done", true)
	}
	defer func() {
		if p := recover(); p != nil {
			slog.Error("edge handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			slot.Set("error", js.Global().Get("Error").New(fmt.Sprintf("edgepoll: handler panicked: %v", p)))
			slot.Set("done", true)
		}
	}()
	req, rq, err := toRequest(args)
	if err != nil {
		resolve(errorResponse(err))
		return
	}
	w := &responseWriter{header: make(http.Header, 8)}
	h.ServeHTTP(w, req)
	if rq.served != "" && w.header.Get(HeaderCache) == "" {
		w.header.Set(HeaderCache, rq.served)
	}
	resolve(w.toJS())
}

func consumeOne(consume Consumer, msgs []Message, slot js.Value) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("queue consumer panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			slot.Set("error", js.Global().Get("Error").New(fmt.Sprintf("edgepoll: consumer panicked: %v", p)))
			slot.Set("done", true)
		}
	}()
	delays := consume(msgs)
	out := make([]any, len(msgs))
	for i := range out {
		secs := 0
		if i >= len(delays) {
			secs = 1 // no verdict: deliver again
		} else if delays[i] > 0 {
			secs = max(1, int(delays[i]/time.Second))
		}
		out[i] = secs
	}
	slot.Set("value", js.ValueOf(out))
	slot.Set("done", true)
}

func toRequest(args []js.Value) (*http.Request, *request, error) {
	method, rawURL, hdrs, body := args[0].String(), args[1].String(), args[2], args[3]
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, shared.Errorf(shared.EINVALID, "bad request URL")
	}
	n := hdrs.Length()
	header := make(http.Header, n/2)
	for i := 0; i+1 < n; i += 2 {
		header.Add(hdrs.Index(i).String(), hdrs.Index(i+1).String())
	}
	var b []byte
	if !body.IsNull() && !body.IsUndefined() {
		b, _ = bytesFrom(body)
	}
	rq := &request{env: args[4], ectx: args[5]}
	req := (&http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: int64(len(b)),
		Host:          u.Host,
		RequestURI:    u.RequestURI(),
		RemoteAddr:    header.Get("Cf-Connecting-Ip"),
	}).WithContext(withRequest(context.Background(), rq))
	if len(b) > 0 {
		req.Body = readCloser{bytes.NewReader(b)}
	}
	return req, rq, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// responseWriter buffers a response: edge responses are small and complete,
// so one Uint8Array crossing beats a stream.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *responseWriter) toJS() js.Value {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n := 0
	for _, vs := range w.header {
		n += 2 * len(vs)
	}
	hs := make([]any, 0, n)
	for k, vs := range w.header {
		for _, v := range vs {
			hs = append(hs, k, v)
		}
	}
	return js.ValueOf([]any{w.status, hs, toUint8Array(w.body.Bytes())})
}

// errorResponse is the JSON error for a request that never reached the handler.
func errorResponse(err error) js.Value {
	body := shared.AppendErrorJSON(nil, err)
	return js.ValueOf([]any{shared.HTTPStatus(shared.ErrorCode(err)),
		[]any{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body))},
		toUint8Array(body)})
}
