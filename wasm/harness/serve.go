package harness

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/abi"
)

// ServeFastHTTP serves one request through a guest instance.
func (h *Harness) ServeFastHTTP(rc *fasthttp.RequestCtx) {
	req := &rc.Request
	if len(req.Body()) > abi.MaxRequestBytes {
		WriteError(rc, shared.Errorf(shared.ETOOLARGE, "request body too large"))
		return
	}
	enc := func(b []byte) []byte {
		n := 0
		for k := range req.Header.All() {
			if !spoofable(k) {
				n++
			}
		}
		n = min(n, abi.MaxHeaders)
		var addr [64]byte
		b = abi.AppendRequestHead(b, req.Header.Method(), req.RequestURI(), appendRemote(addr[:0], rc), n)
		i := 0
		for k, v := range req.Header.All() {
			if i == n {
				break
			}
			if spoofable(k) {
				continue
			}
			b = abi.AppendStringBytes(b, k)
			b = abi.AppendStringBytes(b, v)
			i++
		}
		return abi.AppendRequestBody(b, req.Body())
	}
	// fasthttp cancels every RequestCtx when the server starts shutting
	// down; a request in flight must still finish (a vote in the spool's
	// hand-off would otherwise be answered 500), so the guest runs without
	// that cancellation.
	err := h.do(context.WithoutCancel(rc), enc, func(resp *abi.Response) {
		rc.Response.SetStatusCode(resp.Status)
		for i := 0; i+1 < len(resp.Header); i += 2 {
			rc.Response.Header.AddBytesKV(resp.Header[i], resp.Header[i+1])
		}
		rc.Response.SetBody(resp.Body)
	})
	if err != nil {
		WriteError(rc, err)
	}
}

// spoofable reports whether header k is one a platform sets (Cloudflare's
// CF-Connecting-IP, which the edge trusts for the client address) and that a
// client reaching the harness directly must not be able to forge.
func spoofable(k []byte) bool { return bytes.EqualFold(k, []byte("CF-Connecting-IP")) }

func appendRemote(b []byte, rc *fasthttp.RequestCtx) []byte {
	if a := rc.RemoteAddr(); a != nil {
		return append(b, a.String()...)
	}
	return b
}

// WriteError answers rc with err as the edge's JSON error.
func WriteError(rc *fasthttp.RequestCtx, err error) {
	rc.Response.Reset()
	rc.Response.SetStatusCode(shared.HTTPStatus(shared.ErrorCode(err)))
	rc.Response.Header.SetContentType("application/json")
	if shared.ErrorCode(err) == shared.EUNAVAILABLE {
		rc.Response.Header.Set("Retry-After", "1")
	}
	rc.Response.SetBody(shared.AppendErrorJSON(nil, err))
}

// ServeHTTP serves one request through a guest instance, for net/http
// servers and tests (the fasthttp path is ServeFastHTTP).
func (h *Harness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, abi.MaxRequestBytes+1))
	if err != nil {
		writeHTTPError(w, shared.Wrap(shared.EINVALID, err, "cannot read request body"))
		return
	}
	if len(body) > abi.MaxRequestBytes {
		writeHTTPError(w, shared.Errorf(shared.ETOOLARGE, "request body too large"))
		return
	}
	enc := func(b []byte) []byte {
		n := 1
		for _, vs := range r.Header {
			n += len(vs)
		}
		n = min(n, abi.MaxHeaders)
		b = abi.AppendRequestHead(b, []byte(r.Method), []byte(r.URL.RequestURI()), []byte(r.RemoteAddr), n)
		b = abi.AppendString(b, "Host")
		b = abi.AppendString(b, r.Host)
		i := 1
		for k, vs := range r.Header {
			for _, v := range vs {
				if i == n {
					break
				}
				b = abi.AppendString(b, k)
				b = abi.AppendString(b, v)
				i++
			}
		}
		return abi.AppendRequestBody(b, body)
	}
	err = h.do(r.Context(), enc, func(resp *abi.Response) {
		hdr := w.Header()
		for i := 0; i+1 < len(resp.Header); i += 2 {
			hdr.Add(string(resp.Header[i]), string(resp.Header[i+1]))
		}
		w.WriteHeader(resp.Status)
		w.Write(resp.Body)
	})
	if err != nil {
		writeHTTPError(w, err)
	}
}

func writeHTTPError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	if shared.ErrorCode(err) == shared.EUNAVAILABLE {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(shared.HTTPStatus(shared.ErrorCode(err)))
	w.Write(shared.AppendErrorJSON(nil, err))
}

// Answer is a guest's whole answer to a request the host made itself.
type Answer struct {
	Status int
	// Header holds the response headers as name, value pairs.
	Header [][2]string
	Body   []byte
}

// Get has a guest instance answer GET uri as if remote had sent it with the
// given headers (name, value pairs): the host's own reads through the edge
// handler, such as a results stream's polls.
func (h *Harness) Get(ctx context.Context, uri, remote string, header ...string) (*Answer, error) {
	enc := func(b []byte) []byte {
		n := min(len(header)/2, abi.MaxHeaders)
		b = abi.AppendRequestHead(b, []byte(http.MethodGet), []byte(uri), []byte(remote), n)
		for i := 0; i < n; i++ {
			b = abi.AppendString(b, header[2*i])
			b = abi.AppendString(b, header[2*i+1])
		}
		return abi.AppendRequestBody(b, nil)
	}
	var a Answer
	err := h.do(ctx, enc, func(resp *abi.Response) {
		a.Status = resp.Status
		for i := 0; i+1 < len(resp.Header); i += 2 {
			a.Header = append(a.Header, [2]string{string(resp.Header[i]), string(resp.Header[i+1])})
		}
		a.Body = bytes.Clone(resp.Body)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Value returns the first value of header name (case-insensitive).
func (a *Answer) Value(name string) string {
	for _, kv := range a.Header {
		if strings.EqualFold(kv[0], name) {
			return kv[1]
		}
	}
	return ""
}
