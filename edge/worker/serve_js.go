//go:build js && wasm && !edgepoll_perrequest

package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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

// glueIO asks event id to perform I/O operation kind on p[:n] from its own
// JS context and to report through ep_op_done(op); op 0 wants no report. It
// returns 0 when the event is gone.
//
//go:wasmimport edgepoll io
func glueIO(id, op, kind uint32, p unsafe.Pointer, n uint32) int32

type glueConn struct {
	binding js.Value     // globalThis.context.binding: where the queue handler is registered
	h       http.Handler // the fetch handler
	scratch []byte       // where the glue writes request frames and I/O answers

	mu     sync.Mutex
	nextOp uint32
	ops    map[uint32]chan opResult

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

// ioTimeout bounds one I/O operation (a queue send, an origin fetch).
const ioTimeout = 10 * time.Second

// withRequest returns ctx carrying r.
func withRequest(ctx context.Context, r *request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// conn is the running glue connection, set by Serve before it reports ready.
var conn *glueConn

// The glue calls these exports directly: a plain WebAssembly call costs far
// less than a js.FuncOf callback, which wraps its receiver and arguments in
// js.Values (each with a finalizer). An export only hands work to
// goroutines; the glue then resumes Go, which runs them until all are idle.

// epRequest takes the request frame of event id from the scratch buffer
// (head then body) and starts serving it.
//
//go:wasmexport ep_request
//lint:ignore U1000 called by the glue through go:wasmexport
func epRequest(id, headLen, bodyLen uint32) {
	g := conn
	rq := &request{id: id}
	if uint64(headLen)+uint64(bodyLen) > uint64(len(g.scratch)) {
		respond(id, errorFrame(shared.Errorf(shared.EINTERNAL, "request frame past the scratch buffer")))
		return
	}
	req, err := decodeRequest(withRequest(context.Background(), rq),
		g.scratch[:headLen], g.scratch[headLen:headLen+bodyLen])
	if err != nil {
		respond(id, errorFrame(err))
		return
	}
	g.serve(g.h, req, rq)
}

// epGrow makes the scratch buffer hold at least n bytes.
//
//go:wasmexport ep_grow
//lint:ignore U1000 called by the glue through go:wasmexport
func epGrow(n uint32) { conn.grow(int(n)) }

// epOpDone reports the outcome of I/O operation op: the first n bytes of the
// scratch buffer hold its answer, or its error message when failed is 1.
//
//go:wasmexport ep_op_done
//lint:ignore U1000 called by the glue through go:wasmexport
func epOpDone(op, n, failed uint32) {
	g := conn
	var r opResult
	if int(n) > len(g.scratch) {
		r.err = errors.New("I/O answer past the scratch buffer")
	} else if failed != 0 {
		r.err = errors.New(string(g.scratch[:n]))
	} else if n > 0 {
		r.data = bytes.Clone(g.scratch[:n])
	}
	g.finish(op, r)
}

// Serve registers h as the Worker's fetch handler and consume as its queue
// consumer with the glue, tells the glue the instance is ready and blocks
// forever: the glue keeps this one instance for the isolate's lifetime.
func Serve(h http.Handler, consume Consumer) {
	g := &glueConn{
		binding: js.Global().Get("context").Get("binding"),
		h:       h,
		ops:     make(map[uint32]chan opResult),
		idle:    make(chan job),
	}
	g.grow(64 << 10)
	// The heap of one request's garbage is small and an isolate has 128 MB:
	// collect less often (measured: a few per cent more votes per second),
	// but keep the heap under half of the isolate's memory.
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(64 << 20)
	glue.do = g.do
	conn = g
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

// opResult is what the glue reports for an I/O operation.
type opResult struct {
	data []byte
	err  error
}

// op registers a pending glue operation.
func (g *glueConn) op() (uint32, chan opResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextOp++
	if g.nextOp == 0 {
		g.nextOp = 1
	}
	ch := make(chan opResult, 1)
	g.ops[g.nextOp] = ch
	return g.nextOp, ch
}

func (g *glueConn) finish(op uint32, r opResult) {
	g.mu.Lock()
	ch := g.ops[op]
	delete(g.ops, op)
	g.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

func (g *glueConn) forget(op uint32) {
	g.mu.Lock()
	delete(g.ops, op)
	g.mu.Unlock()
}

// do performs I/O operation kind for the event that owns ctx. A Worker ties
// I/O to the request (IoContext) that started it, and with one Go instance a
// goroutine runs on behalf of whichever event resumed Go; so Go never starts
// I/O, awaits a promise or reads a stream itself. It hands the operation to
// the glue, which performs it whole (a fetch including its body) from the
// owning event's own JS context and hands back plain bytes. ioCachePut is
// not waited for.
func (g *glueConn) do(ctx context.Context, kind ioKind, payload []byte) ([]byte, error) {
	rq := requestFrom(ctx)
	if rq == nil {
		return nil, shared.Errorf(shared.EINTERNAL, "worker I/O outside an event")
	}
	var op uint32
	var ch chan opResult
	if kind != ioCachePut {
		op, ch = g.op()
	}
	ok := glueIO(rq.id, op, uint32(kind), unsafe.Pointer(unsafe.SliceData(payload)), uint32(len(payload)))
	runtime.KeepAlive(payload)
	if ok == 0 {
		if ch != nil {
			g.forget(op)
		}
		return nil, shared.Errorf(shared.EUNAVAILABLE, "%s: the request ended", kind)
	}
	if ch == nil {
		return nil, nil
	}
	// The answer comes from the request's own JS context; should that
	// context be cancelled first, it may never come: bound the wait.
	t := time.NewTimer(ioTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, r.err, kind.String())
		}
		return r.data, nil
	case <-t.C:
		g.forget(op)
		return nil, shared.Errorf(shared.EUNAVAILABLE, "%s: no answer from the request's context within %s", kind, ioTimeout)
	case <-ctx.Done():
		g.forget(op)
		return nil, shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), kind.String())
	}
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
	respond(rq.id, w.frame()) // the glue copies the frame before respond returns
	w.release()
}

// consumeOne runs one queue delivery; its answer frame's body holds one
// little-endian u32 per message: 0 = ack, n > 0 = retry after n seconds.
func consumeOne(consume Consumer, msgs []Message, id uint32) {
	ctx := withRequest(context.Background(), &request{id: id})
	defer func() {
		if p := recover(); p != nil {
			slog.Error("queue consumer panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			respond(id, failureFrame(fmt.Sprintf("edgepoll: consumer panicked: %v", p)))
		}
	}()
	delays := consume(ctx, msgs)
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
