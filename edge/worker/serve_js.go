//go:build js && wasm

package worker

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/edgepoll/edgepoll/shared"
)

// The glue's side of the bargain (edge/worker/glue/worker.mjs). These are
// plain WebAssembly imports: numbers and pointers into Go's memory only, no
// js.Value, so a call costs next to nothing and allocates nothing.

// ready tells the glue that the Go program has registered its handlers.
//
//go:wasmimport workers ready
func ready()

// glueScratch tells the glue where to write request frames.
//
//go:wasmimport edgepoll scratch
func glueScratch(p unsafe.Pointer, n uint32)

// glueRespond hands event id its answer frame; the glue copies it at once.
//
//go:wasmimport edgepoll respond
func glueRespond(id uint32, p unsafe.Pointer, n uint32)

// glueSend asks event id to send frame p[:n] as one message on the votes
// queue, from its own JS context, and to report through opDone(op). It
// returns 0 when the event is gone.
//
//go:wasmimport edgepoll send
func glueSend(id, op uint32, p unsafe.Pointer, n uint32) int32

// glueEnter asks event id to call opDone(op) from its own JS context. It
// returns 0 when the event is gone.
//
//go:wasmimport edgepoll enter
func glueEnter(id, op uint32) int32

// glueCurrent returns the event whose JS context is running Go right now, or 0
// when the glue does not know (a promise continuation resumed Go).
//
//go:wasmimport edgepoll current
func glueCurrent() uint32

// request holds one event's own state. It travels in the request's
// context.Context, never in a global, so concurrent requests in the isolate
// never see each other's handles.
type request struct {
	id uint32 // the glue's event id

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

// glue holds what the Host needs from the one-instance glue; its fields are
// nil until Serve runs. They are set only there, so a program that never
// calls Serve (the per-request benchmark build) links none of the imports
// above.
var glue struct {
	own         func(ctx context.Context) error
	send        func(ctx context.Context, batch []byte) error
	env         func(id uint32) js.Value
	execContext func(id uint32) js.Value
}

type glueConn struct {
	binding js.Value // globalThis.context.binding: env and ExecutionContext lookups
	scratch []byte   // where the glue writes request frames

	mu     sync.Mutex
	nextOp uint32
	ops    map[uint32]chan error

	idle   chan job     // requests for parked serving goroutines
	parked atomic.Int32 // serving goroutines parked on idle
}

// job is one request for a serving goroutine.
type job struct {
	req *http.Request
	rq  *request
}

// maxIdleServers bounds the serving goroutines parked between requests.
const maxIdleServers = 256

// serve runs req on a parked serving goroutine, or on a new one. Reusing
// goroutines keeps their grown stacks: a fresh goroutine per request spends
// much of its time growing (copying) its stack.
func (g *glueConn) serve(h http.Handler, req *http.Request, rq *request) {
	select {
	case g.idle <- job{req, rq}:
	default:
		go g.server(h, job{req, rq})
	}
}

// server serves j, then parks for further jobs while fewer than
// maxIdleServers are parked.
func (g *glueConn) server(h http.Handler, j job) {
	for {
		serveOne(h, j.req, j.rq)
		if g.parked.Add(1) > maxIdleServers {
			g.parked.Add(-1)
			return
		}
		j = <-g.idle
		g.parked.Add(-1)
	}
}

// Serve registers h as the Worker's fetch handler and consume as its queue
// consumer with the glue, tells the glue the instance is ready and blocks
// forever: the glue keeps this one instance for the isolate's lifetime.
func Serve(h http.Handler, consume Consumer) {
	g := &glueConn{
		binding: js.Global().Get("context").Get("binding"),
		ops:     make(map[uint32]chan error),
		idle:    make(chan job),
	}
	g.grow(64 << 10)
	glue.own, glue.send, glue.env, glue.execContext = g.own, g.send, g.env, g.execContext
	g.binding.Set("handleRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		// args: id, headLen, bodyLen; the frame is in the scratch buffer.
		id, headLen, bodyLen := uint32(args[0].Int()), args[1].Int(), args[2].Int()
		rq := &request{id: id}
		req, err := decodeRequest(withRequest(context.Background(), rq),
			g.scratch[:headLen], g.scratch[headLen:headLen+bodyLen])
		if err != nil {
			respond(id, errorFrame(err))
			return nil
		}
		g.serve(h, req, rq)
		return nil
	}))
	g.binding.Set("grow", js.FuncOf(func(_ js.Value, args []js.Value) any {
		g.grow(args[0].Int())
		return nil
	}))
	g.binding.Set("opDone", js.FuncOf(func(_ js.Value, args []js.Value) any {
		var err error
		if len(args) > 1 && args[1].Type() == js.TypeString {
			err = fmt.Errorf("%s", args[1].String())
		}
		g.finish(uint32(args[0].Int()), err)
		return nil
	}))
	g.binding.Set("handleQueue", js.FuncOf(func(_ js.Value, args []js.Value) any {
		// args: id, messages. Copy the messages while this event is current.
		id, arr := uint32(args[0].Int()), args[1]
		msgs := make([]Message, arr.Length())
		for i := range msgs {
			m := arr.Index(i)
			msgs[i] = Message{ID: m.Get("id").String(), Attempts: m.Get("attempts").Int()}
			msgs[i].Body, _ = bytesFrom(m.Get("body"))
		}
		go consumeOne(consume, msgs, id)
		return nil
	}))
	ready()
	select {}
}

// grow makes the scratch buffer hold at least n bytes.
func (g *glueConn) grow(n int) {
	if n <= len(g.scratch) {
		return
	}
	g.scratch = make([]byte, max(n, 2*len(g.scratch)))
	glueScratch(unsafe.Pointer(&g.scratch[0]), uint32(len(g.scratch)))
}

// op registers a pending glue operation.
func (g *glueConn) op() (uint32, chan error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextOp++
	if g.nextOp == 0 {
		g.nextOp = 1
	}
	ch := make(chan error, 1)
	g.ops[g.nextOp] = ch
	return g.nextOp, ch
}

func (g *glueConn) finish(op uint32, err error) {
	g.mu.Lock()
	ch := g.ops[op]
	delete(g.ops, op)
	g.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

func (g *glueConn) forget(op uint32) {
	g.mu.Lock()
	delete(g.ops, op)
	g.mu.Unlock()
}

// own makes sure the calling goroutine runs in the JS context of ctx's
// request before it starts I/O: a Worker ties I/O to the request whose
// handler started it and cancels it when that request ends, and with one Go
// instance a goroutine may be running on behalf of whichever event resumed
// Go. When another event (or an unknown one) is current, own asks the
// request's own JS side to call back into Go and waits for that call.
func (g *glueConn) own(ctx context.Context) error {
	rq := requestFrom(ctx)
	if rq == nil || glueCurrent() == rq.id {
		return nil
	}
	op, ch := g.op()
	if glueEnter(rq.id, op) == 0 {
		g.forget(op)
		return shared.Errorf(shared.EUNAVAILABLE, "request ended")
	}
	return g.wait(ctx, op, ch, "switching to the request's context")
}

// send sends batch on the votes queue from the JS context of ctx's request,
// which awaits it.
func (g *glueConn) send(ctx context.Context, batch []byte) error {
	rq := requestFrom(ctx)
	if rq == nil {
		return shared.Errorf(shared.EINTERNAL, "queue send outside a request")
	}
	op, ch := g.op()
	ok := glueSend(rq.id, op, unsafe.Pointer(unsafe.SliceData(batch)), uint32(len(batch)))
	runtime.KeepAlive(batch)
	if ok == 0 {
		g.forget(op)
		return shared.Errorf(shared.EUNAVAILABLE, "request ended before its vote batch was sent")
	}
	return g.wait(ctx, op, ch, "queue send")
}

// wait waits for operation op; what names it in errors.
func (g *glueConn) wait(ctx context.Context, op uint32, ch chan error, what string) error {
	// The answer comes from the request's own JS context; should that
	// context be cancelled first, it may never come: bound the wait.
	t := time.NewTimer(sendTimeout)
	defer t.Stop()
	select {
	case err := <-ch:
		if err != nil {
			return shared.Wrap(shared.EUNAVAILABLE, err, what)
		}
		return nil
	case <-t.C:
		g.forget(op)
		return shared.Errorf(shared.EUNAVAILABLE, "%s: no answer from the request's context within %s", what, sendTimeout)
	case <-ctx.Done():
		g.forget(op)
		return shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), what)
	}
}

// execContext returns the ExecutionContext of event id (for waitUntil), or undefined.
func (g *glueConn) execContext(id uint32) js.Value {
	return g.binding.Call("ctxOf", id)
}

// env returns the env of event id, or undefined.
func (g *glueConn) env(id uint32) js.Value {
	return g.binding.Call("envOf", id)
}

// respond hands event id its answer frame.
func respond(id uint32, frame []byte) {
	glueRespond(id, unsafe.Pointer(unsafe.SliceData(frame)), uint32(len(frame)))
	runtime.KeepAlive(frame)
}

// serveOne runs one request and hands its response frame to the glue, which
// settles the request from the request's own JS context.
func serveOne(h http.Handler, req *http.Request, rq *request) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("edge handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			respond(rq.id, errorFrame(shared.Errorf(shared.EINTERNAL, "internal error")))
		}
	}()
	w := newResponseWriter()
	h.ServeHTTP(w, req)
	rq.mu.Lock()
	served := rq.served
	rq.mu.Unlock()
	if served != "" && w.header.Get(HeaderCache) == "" {
		w.header.Set(HeaderCache, served)
	}
	respond(rq.id, w.frame())
}

// consumeOne runs one queue delivery; its answer frame's body holds one
// little-endian u32 per message: 0 = ack, n > 0 = retry after n seconds.
func consumeOne(consume Consumer, msgs []Message, id uint32) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("queue consumer panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			respond(id, failureFrame(fmt.Sprintf("edgepoll: consumer panicked: %v", p)))
		}
	}()
	delays := consume(msgs)
	body := make([]byte, 0, 4*len(msgs))
	for i := range msgs {
		secs := 0
		if i >= len(delays) {
			secs = 1 // no verdict: deliver again
		} else if delays[i] > 0 {
			secs = max(1, int(delays[i]/time.Second))
		}
		body = binary.LittleEndian.AppendUint32(body, uint32(secs))
	}
	respond(id, appendResponse(nil, http.StatusOK, nil, body))
}
