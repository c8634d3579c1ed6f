//go:build js && wasm

package worker

import (
	"context"
	"strings"
	"sync"
	"syscall/js"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/syumai/workers/cloudflare/queues"
)

// directIO performs an I/O operation straight from Go, for a program that
// runs without the one-instance glue (behind syumai/workers' per-request
// glue, where every instance serves one request, so the JS context running
// Go is always the request's own). It speaks the same frames as the glue.
func directIO(ctx context.Context, kind ioKind, payload []byte) ([]byte, error) {
	switch kind {
	case ioSend:
		directProducer.once.Do(func() { directProducer.p, directProducer.err = queues.NewProducer(BindingVotes) })
		if directProducer.err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, directProducer.err, "queue binding "+BindingVotes)
		}
		if err := directProducer.p.SendBytes(payload); err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, kind.String())
		}
		return nil, nil
	case ioFetch, ioCachePut:
		req, err := decodeIORequest(payload)
		if err != nil {
			return nil, err
		}
		if kind == ioCachePut {
			init := objectClass.New()
			init.Set("headers", toHeaders(req.Header))
			res := js.Global().Get("Response").New(toUint8Array(req.Body), init)
			if _, err := await(js.Global().Get("caches").Get("default").Call("put", req.URL, res)); err != nil {
				return nil, shared.Wrap(shared.EUNAVAILABLE, err, kind.String())
			}
			return nil, nil
		}
		init := objectClass.New()
		init.Set("method", req.Method)
		init.Set("headers", toHeaders(req.Header))
		init.Set("redirect", "manual")
		if len(req.Body) > 0 {
			init.Set("body", toUint8Array(req.Body))
		}
		res, err := await(js.Global().Get("globalThis").Call("fetch", req.URL, init))
		if err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, kind.String())
		}
		return responseFrameFrom(res)
	case ioCacheMatch:
		res, err := await(js.Global().Get("caches").Get("default").Call("match", string(payload)))
		if err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, kind.String())
		}
		if res.Type() != js.TypeObject {
			return appendResponse(nil, 404, nil, nil), nil
		}
		return responseFrameFrom(res)
	case ioLimit:
		arg := objectClass.New()
		arg.Set("key", string(payload))
		rl := js.Global().Get("context").Get("env").Get(BindingRateLimiter)
		res, err := await(rl.Call("limit", arg))
		if err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, kind.String())
		}
		if !res.Get("success").Truthy() {
			return appendResponse(nil, 429, nil, nil), nil
		}
		return appendResponse(nil, 200, nil, nil), nil
	}
	return nil, shared.Errorf(shared.EINTERNAL, "unknown worker I/O kind %d", kind)
}

var directProducer struct {
	once sync.Once
	p    *queues.Producer
	err  error
}

// toHeaders returns h as a JS headers init object.
func toHeaders(h map[string][]string) js.Value {
	o := objectClass.New()
	for k, vs := range h {
		o.Set(k, strings.Join(vs, ", "))
	}
	return o
}

// responseFrameFrom reads a JS Response whole into a response frame.
func responseFrameFrom(res js.Value) ([]byte, error) {
	var head []string
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any {
		// forEach passes (value, name)
		head = append(head, args[1].String(), args[0].String())
		return nil
	})
	res.Get("headers").Call("forEach", cb)
	cb.Release()
	buf, err := await(res.Call("arrayBuffer"))
	if err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "reading a response body")
	}
	body, _ := bytesFrom(buf)
	hd := make(map[string][]string, len(head)/2)
	for i := 0; i+1 < len(head); i += 2 {
		hd[head[i]] = append(hd[head[i]], head[i+1])
	}
	return appendResponse(nil, res.Get("status").Int(), hd, body), nil
}
