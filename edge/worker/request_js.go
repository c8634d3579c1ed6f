//go:build js && wasm

package worker

import (
	"context"
	"sync"
)

// request holds one event's own state. It travels in the request's
// context.Context, never in a global, so concurrent requests in the isolate
// never see each other's handles.
type request struct {
	//lint:ignore U1000 used by the one-instance glue (serve_js.go), not in per-request builds
	id uint32 // the glue's event id

	mu     sync.Mutex
	served string // how a cached read was served, for HeaderCache
}

type requestKey struct{}

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

// glue holds what the Host needs from the one-instance glue; do is nil until
// Serve runs. Without it the Host does its I/O directly (directIO): the
// per-request benchmark build, tagged edgepoll_perrequest, links neither the
// glue's imports nor its exports (serve_js.go).
var glue struct {
	do func(ctx context.Context, kind ioKind, payload []byte) ([]byte, error)
}
