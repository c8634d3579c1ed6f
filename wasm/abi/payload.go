package abi

import (
	"github.com/edgepoll/edgepoll/shared"
)

// PayloadVersion is the first element of every payload array; a reader
// refuses any other value.
const PayloadVersion = 1

// AppendStringBytes appends p as a MessagePack str.
func AppendStringBytes(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

func (r *Reader) version(what string) {
	if v := r.Int(what); r.err == nil && v != PayloadVersion {
		r.fail(what, "unsupported payload version")
	}
}

// Request is an HTTP request as the host passes it to ep_handle:
//
//	[1, method str, uri str, remote_addr str, [name str, value str, ...], body bin]
//
// URI is the path with its query ("/v1/polls/p1?x=1"); RemoteAddr is the
// client's "ip:port". Header holds name/value pairs flattened.
type Request struct {
	Method     string
	URI        string
	RemoteAddr string
	Header     []string
	Body       []byte
}

// AppendRequestHead appends a Request's fields up to its header array header;
// the caller then appends exactly 2*nHeaders strings and calls AppendRequestBody.
// Hosts use it to encode without building a Request.
func AppendRequestHead(b []byte, method, uri, remoteAddr []byte, nHeaders int) []byte {
	b = append(b, 0x96, PayloadVersion)
	b = AppendStringBytes(b, method)
	b = AppendStringBytes(b, uri)
	b = AppendStringBytes(b, remoteAddr)
	return AppendArrayHeader(b, 2*nHeaders)
}

// AppendRequestBody appends a Request's body, its last field.
func AppendRequestBody(b []byte, body []byte) []byte { return AppendBytes(b, body) }

// Append appends the encoding of req to b.
func (req *Request) Append(b []byte) []byte {
	b = append(b, 0x96, PayloadVersion)
	b = AppendString(b, req.Method)
	b = AppendString(b, req.URI)
	b = AppendString(b, req.RemoteAddr)
	b = AppendArrayHeader(b, len(req.Header)&^1)
	for _, s := range req.Header[:len(req.Header)&^1] {
		b = AppendString(b, s)
	}
	return AppendBytes(b, req.Body)
}

// DecodeRequest decodes data into req, reusing req.Header's capacity. Body
// aliases data. Errors are EINVALID.
func DecodeRequest(data []byte, req *Request) error {
	var r Reader
	r.Reset(data)
	r.Array(6, "request")
	r.version("request")
	req.Method = r.String(16, "request method")
	req.URI = r.String(MaxURIBytes, "request uri")
	req.RemoteAddr = r.String(64, "request remote address")
	n := r.ArrayHeader(2*MaxHeaders, "request headers")
	if n%2 != 0 {
		r.fail("request headers", "odd number of strings")
	}
	req.Header = req.Header[:0]
	size := 0
	for i := 0; i < n && r.err == nil; i++ {
		s := r.RawString(MaxHeaderBytes, "request header")
		size += len(s)
		if size > MaxHeaderBytes {
			r.fail("request headers", "too large")
		}
		req.Header = append(req.Header, string(s))
	}
	req.Body = r.Bytes(MaxRequestBytes, "request body")
	return r.Done("request")
}

// Response is the guest's answer from ep_handle:
//
//	[1, status int, [name str, value str, ...], body bin]
type Response struct {
	Status int
	Header [][]byte // name/value pairs flattened; aliases the decoded buffer
	Body   []byte   // aliases the decoded buffer
}

// AppendResponseHead appends a Response's status and header array header;
// the caller then appends exactly 2*nHeaders strings and then the body with
// AppendBytes.
func AppendResponseHead(b []byte, status, nHeaders int) []byte {
	b = append(b, 0x94, PayloadVersion)
	b = AppendUint(b, uint64(status))
	return AppendArrayHeader(b, 2*nHeaders)
}

// DecodeResponse decodes data into resp, reusing resp.Header's capacity. The
// header values and the body alias data. Errors are EINVALID.
func DecodeResponse(data []byte, resp *Response) error {
	var r Reader
	r.Reset(data)
	r.Array(4, "response")
	r.version("response")
	resp.Status = int(r.Uint(999, "response status"))
	if r.err == nil && resp.Status < 100 {
		r.fail("response status", "out of range")
	}
	n := r.ArrayHeader(2*MaxHeaders, "response headers")
	if n%2 != 0 {
		r.fail("response headers", "odd number of strings")
	}
	resp.Header = resp.Header[:0]
	for i := 0; i < n && r.err == nil; i++ {
		resp.Header = append(resp.Header, r.RawString(MaxHeaderBytes, "response header"))
	}
	resp.Body = r.Bytes(MaxResponseBytes, "response body")
	return r.Done("response")
}

// AppendVote appends v as the submit import's argument:
//
//	[1, poll str, voter bin(16), choices bin, at int, words [str...]]
func AppendVote(b []byte, v *shared.Vote) []byte {
	b = append(b, 0x96, PayloadVersion)
	b = AppendString(b, v.Poll)
	b = AppendBytes(b, v.Voter[:])
	b = AppendBytes(b, v.Choices)
	b = AppendInt(b, v.At)
	b = AppendArrayHeader(b, len(v.Words))
	for _, w := range v.Words {
		b = AppendString(b, w)
	}
	return b
}

// DecodeVote decodes a submit argument into v (Choices is a fresh copy) and
// validates its shape. Errors are EINVALID.
func DecodeVote(data []byte, v *shared.Vote) error {
	var r Reader
	r.Reset(data)
	r.Array(6, "vote")
	r.version("vote")
	v.Poll = r.String(shared.MaxPollIDLen, "vote poll")
	voter := r.Bytes(16, "vote voter")
	if r.err == nil && len(voter) != 16 {
		r.fail("vote voter", "want 16 bytes")
	}
	copy(v.Voter[:], voter)
	v.Choices = append(v.Choices[:0:0], r.Bytes(shared.MaxChoicesCap, "vote choices")...)
	v.At = r.Int("vote at")
	v.Words = nil
	if n := r.ArrayHeader(shared.MaxWordsCap, "vote words"); n > 0 {
		v.Words = make([]string, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			v.Words = append(v.Words, r.String(shared.MaxWordBytes, "vote word"))
		}
	}
	if err := r.Done("vote"); err != nil {
		return err
	}
	return v.Validate()
}

// Cached is the results import's answer, an edge.Cached:
//
//	[1, status int, content_type str, etag str, cache_control str, body bin]
type Cached struct {
	Status       int
	ContentType  string
	ETag         string
	CacheControl string
	Body         []byte
}

// Append appends the encoding of c to b.
func (c *Cached) Append(b []byte) []byte {
	b = append(b, 0x96, PayloadVersion)
	b = AppendUint(b, uint64(c.Status))
	b = AppendString(b, c.ContentType)
	b = AppendString(b, c.ETag)
	b = AppendString(b, c.CacheControl)
	return AppendBytes(b, c.Body)
}

// DecodeCached decodes data into c; Body is a fresh copy. Errors are EINVALID.
func DecodeCached(data []byte, c *Cached) error {
	var r Reader
	r.Reset(data)
	r.Array(6, "cached")
	r.version("cached")
	c.Status = int(r.Uint(999, "cached status"))
	c.ContentType = r.String(256, "cached content type")
	c.ETag = r.String(256, "cached etag")
	c.CacheControl = r.String(256, "cached cache control")
	c.Body = append([]byte(nil), r.Bytes(MaxResponseBytes, "cached body")...)
	return r.Done("cached")
}

// AppendAttrs appends log attributes as a flat array of key/value strings:
//
//	[key str, value str, ...]
func AppendAttrs(b []byte, kv []string) []byte {
	b = AppendArrayHeader(b, len(kv)&^1)
	for _, s := range kv[:len(kv)&^1] {
		b = AppendString(b, s)
	}
	return b
}

// DecodeAttrs decodes log attributes into key/value strings.
func DecodeAttrs(data []byte) ([]string, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var r Reader
	r.Reset(data)
	n := r.ArrayHeader(64, "log attrs")
	kv := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		kv = append(kv, r.String(MaxMessageBytes, "log attr"))
	}
	return kv, r.Done("log attrs")
}
