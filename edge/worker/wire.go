package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/edgepoll/edgepoll/shared"
)

// The glue and the Go program exchange each request and each response as ONE
// packed byte frame, so a request costs a single crossing each way instead
// of one JS↔Go call per header (every js.Value the Go side holds costs a
// finalizer).
//
// Request frame (glue → Go, written straight into Go's scratch buffer):
//
//	head: UTF-8 "METHOD\nURL\nname\nvalue\n…\nname\nvalue" (headLen bytes)
//	body: the raw request body (bodyLen bytes)
//
// Neither a method, a serialised URL nor a Fetch API header name or value
// can hold a line feed, so "\n" separates fields unambiguously.
//
// Response frame (Go → glue):
//
//	u16 status (little endian; 0 means "failed": the body is the reason)
//	u16 reserved (0)
//	u32 headLen (little endian)
//	head: UTF-8 "name\nvalue\n…" (headLen bytes)
//	body: the rest
const respPrefix = 8

// decodeRequest builds an *http.Request from a request frame. The frame is
// copied: the caller's buffer may be reused as soon as this returns.
func decodeRequest(ctx context.Context, head, body []byte) (*http.Request, error) {
	h := string(head)
	method, rest, ok := strings.Cut(h, "\n")
	if !ok || method == "" {
		return nil, shared.Errorf(shared.EINVALID, "bad request frame")
	}
	rawURL, rest, _ := strings.Cut(rest, "\n")
	u, requestURI, ok := parseSimpleURL(rawURL)
	if !ok {
		var err error
		if u, err = url.Parse(rawURL); err != nil {
			return nil, shared.Errorf(shared.EINVALID, "bad request URL")
		}
		requestURI = u.RequestURI()
	}
	// One backing array for every header value: a header that repeats
	// appends beyond its one-element, capacity-capped slice and so copies.
	vals := make([]string, strings.Count(rest, "\n")/2+1)
	header := make(http.Header, len(vals))
	n := 0
	for rest != "" {
		var name, value string
		name, rest, _ = strings.Cut(rest, "\n")
		value, rest, _ = strings.Cut(rest, "\n")
		key := canonicalHeader(name)
		if vs, dup := header[key]; dup {
			header[key] = append(vs, value)
			continue
		}
		vals[n] = value
		header[key] = vals[n : n+1 : n+1]
		n++
	}
	req := (&http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
		Host:          u.Host,
		RequestURI:    requestURI,
		RemoteAddr:    header.Get("Cf-Connecting-Ip"),
	}).WithContext(ctx)
	if len(body) > 0 {
		req.Body = readCloser{bytes.NewReader(bytes.Clone(body))}
	}
	return req, nil
}

// parseSimpleURL parses the common absolute URL "http(s)://host/path?query"
// whose characters need no unescaping, without url.Parse's allocations. It
// reports false for anything else, which url.Parse then handles.
func parseSimpleURL(raw string) (u *url.URL, requestURI string, ok bool) {
	var scheme string
	switch {
	case strings.HasPrefix(raw, "https://"):
		scheme = "https"
	case strings.HasPrefix(raw, "http://"):
		scheme = "http"
	default:
		return nil, "", false
	}
	rest := raw[len(scheme)+3:]
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '/', c == ':', c == '?', c == '=', c == '&', c == ',':
		default:
			return nil, "", false // %, @, #, +, ;, spaces, non-ASCII...
		}
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return nil, "", false
	}
	host, requestURI := rest[:slash], rest[slash:]
	path, query, hasQuery := strings.Cut(requestURI, "?")
	if strings.Contains(query, "?") || !simpleHost(host) {
		return nil, "", false
	}
	return &url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}, requestURI, true
}

// simpleHost reports whether host is a DNS name or IPv4 address of letters,
// digits, dots and dashes with an optional decimal port.
func simpleHost(host string) bool {
	name, port, hasPort := strings.Cut(host, ":")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	if hasPort {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	return true
}

// canonicalHeader returns the canonical form of a header name. The runtime
// hands names over in lower case; the common ones map to constants without
// allocating.
func canonicalHeader(name string) string {
	switch name {
	case "accept":
		return "Accept"
	case "accept-encoding":
		return "Accept-Encoding"
	case "accept-language":
		return "Accept-Language"
	case "access-control-request-headers":
		return "Access-Control-Request-Headers"
	case "access-control-request-method":
		return "Access-Control-Request-Method"
	case "cache-control":
		return "Cache-Control"
	case "cf-connecting-ip":
		return "Cf-Connecting-Ip"
	case "cf-ipcountry":
		return "Cf-Ipcountry"
	case "cf-ray":
		return "Cf-Ray"
	case "cf-visitor":
		return "Cf-Visitor"
	case "connection":
		return "Connection"
	case "content-length":
		return "Content-Length"
	case "content-type":
		return "Content-Type"
	case "cookie":
		return "Cookie"
	case "host":
		return "Host"
	case "if-none-match":
		return "If-None-Match"
	case "origin":
		return "Origin"
	case "referer":
		return "Referer"
	case "user-agent":
		return "User-Agent"
	case "x-forwarded-for":
		return "X-Forwarded-For"
	case "x-forwarded-proto":
		return "X-Forwarded-Proto"
	case "x-real-ip":
		return "X-Real-Ip"
	}
	return http.CanonicalHeaderKey(name)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// appendResponse appends a response frame to dst.
func appendResponse(dst []byte, status int, header http.Header, body []byte) []byte {
	n := 0
	for k, vs := range header {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	if n > 0 {
		n-- // no separator after the last value
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(status))
	dst = binary.LittleEndian.AppendUint16(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	first := true
	for k, vs := range header {
		for _, v := range vs {
			if !first {
				dst = append(dst, '\n')
			}
			first = false
			dst = appendLine(dst, k)
			dst = append(dst, '\n')
			dst = appendLine(dst, v)
		}
	}
	return append(dst, body...)
}

// appendLine appends s with any line break replaced by a space, so a header
// can never split into extra fields.
func appendLine(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, "\r\n") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// failureFrame is a response frame that tells the glue the event failed.
func failureFrame(reason string) []byte {
	return appendResponse(nil, 0, nil, []byte(reason))
}

// responseWriter buffers a response: edge responses are small and complete,
// so one packed frame beats a stream. Writers are pooled: the glue copies a
// frame before respond returns, so both the writer and its frame buffer are
// reused by the next request.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	buf    []byte // the last frame, kept for its capacity
}

var writers = sync.Pool{New: func() any { return &responseWriter{header: make(http.Header, 8)} }}

// newResponseWriter returns an empty writer from the pool.
func newResponseWriter() *responseWriter { return writers.Get().(*responseWriter) }

// release returns w to the pool; neither w nor its last frame may be used after.
func (w *responseWriter) release() {
	if w.body.Cap() > 64<<10 || cap(w.buf) > 64<<10 {
		return // let an unusually large response go
	}
	clear(w.header)
	w.status = 0
	w.body.Reset()
	writers.Put(w)
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

// frame returns the buffered response as a response frame, valid until
// release.
func (w *responseWriter) frame() []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.buf = appendResponse(w.buf[:0], w.status, w.header, w.body.Bytes())
	return w.buf
}

// errorFrame is the JSON error response for a request that never reached the handler.
func errorFrame(err error) []byte {
	body := shared.AppendErrorJSON(nil, err)
	return appendResponse(nil, shared.HTTPStatus(shared.ErrorCode(err)),
		http.Header{"Content-Type": {"application/json"}}, body)
}

// The Go program asks the glue for I/O (an origin fetch, a Cache API read or
// write) with an I/O request frame, and gets a response frame back:
//
//	u32 headLen (little endian)
//	head: UTF-8 "METHOD\nURL\nname\nvalue\n…" (headLen bytes)
//	body: the rest
//
// The glue answers a fetch or a cache read with a response frame of the
// layout above, status 1..599.

// appendIORequest appends an I/O request frame to dst.
func appendIORequest(dst []byte, method, url string, header http.Header, body []byte) []byte {
	n := len(method) + 1 + len(url)
	for k, vs := range header {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = appendLine(dst, method)
	dst = append(dst, '\n')
	dst = appendLine(dst, url)
	for k, vs := range header {
		for _, v := range vs {
			dst = append(dst, '\n')
			dst = appendLine(dst, k)
			dst = append(dst, '\n')
			dst = appendLine(dst, v)
		}
	}
	return append(dst, body...)
}

// ioResponse is the glue's answer to an I/O request.
type ioResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// decodeResponse decodes a response frame from the glue. Errors are
// EINTERNAL: the glue wrote the frame.
func decodeResponse(f []byte) (*ioResponse, error) {
	if len(f) < respPrefix {
		return nil, shared.Errorf(shared.EINTERNAL, "short response frame (%d bytes)", len(f))
	}
	status := int(binary.LittleEndian.Uint16(f))
	n := binary.LittleEndian.Uint32(f[4:])
	if status < 100 || status > 599 || uint64(n) > uint64(len(f)-respPrefix) {
		return nil, shared.Errorf(shared.EINTERNAL, "bad response frame (status %d, head %d of %d bytes)", status, n, len(f))
	}
	r := &ioResponse{Status: status, Header: make(http.Header, 8), Body: f[respPrefix+n:]}
	rest := string(f[respPrefix : respPrefix+n])
	for rest != "" {
		var name, value string
		name, rest, _ = strings.Cut(rest, "\n")
		value, rest, _ = strings.Cut(rest, "\n")
		key := http.CanonicalHeaderKey(name)
		r.Header[key] = append(r.Header[key], value)
	}
	return r, nil
}

// ioRequest is a decoded I/O request frame.
type ioRequest struct {
	Method, URL string
	Header      http.Header
	Body        []byte
}

// decodeIORequest decodes an I/O request frame written by appendIORequest.
// Errors are EINTERNAL: the Go program wrote the frame.
func decodeIORequest(f []byte) (*ioRequest, error) {
	if len(f) < 4 || uint64(binary.LittleEndian.Uint32(f)) > uint64(len(f)-4) {
		return nil, shared.Errorf(shared.EINTERNAL, "bad I/O request frame")
	}
	n := binary.LittleEndian.Uint32(f)
	r, err := decodeRequest(context.Background(), f[4:4+n], nil)
	if err != nil {
		return nil, shared.Wrap(shared.EINTERNAL, err, "bad I/O request frame")
	}
	return &ioRequest{Method: r.Method, URL: r.URL.String(), Header: r.Header, Body: f[4+n:]}, nil
}
