package worker

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

func TestDecodeRequestFrame(t *testing.T) {
	head := []byte("POST\nhttps://edge.example/v1/polls/p1/votes?x=1\ncontent-type\napplication/json\ncf-connecting-ip\n203.0.113.9\naccept\na\naccept\nb")
	body := []byte(`{"choice":1}`)
	req, err := decodeRequest(context.Background(), head, body)
	if err != nil {
		t.Fatal(err)
	}
	body[0] = 'X' // the request must not alias the caller's buffer
	if req.Method != "POST" || req.URL.Path != "/v1/polls/p1/votes" || req.URL.RawQuery != "x=1" || req.Host != "edge.example" {
		t.Fatalf("request line: %s %v host %q", req.Method, req.URL, req.Host)
	}
	if req.Header.Get("Content-Type") != "application/json" || req.RemoteAddr != "203.0.113.9" {
		t.Fatalf("headers: %v remote %q", req.Header, req.RemoteAddr)
	}
	if got := req.Header.Values("Accept"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("repeated header: %v", got)
	}
	b, _ := io.ReadAll(req.Body)
	if string(b) != `{"choice":1}` || req.ContentLength != 12 {
		t.Fatalf("body %q (len %d)", b, req.ContentLength)
	}
}

func TestDecodeRequestFrameRejectsGarbage(t *testing.T) {
	for _, head := range []string{"", "GET", "GET\n%zz"} {
		if _, err := decodeRequest(context.Background(), []byte(head), nil); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("head %q: err %v, want EINVALID", head, err)
		}
	}
}

// parseFrame decodes a response frame the way the glue does.
func parseFrame(t *testing.T, f []byte) (int, [][2]string, string) {
	t.Helper()
	if len(f) < respPrefix {
		t.Fatalf("frame of %d bytes", len(f))
	}
	status := int(binary.LittleEndian.Uint16(f))
	n := int(binary.LittleEndian.Uint32(f[4:]))
	var hs [][2]string
	if n > 0 {
		parts := strings.Split(string(f[respPrefix:respPrefix+n]), "\n")
		if len(parts)%2 != 0 {
			t.Fatalf("odd header fields: %q", parts)
		}
		for i := 0; i < len(parts); i += 2 {
			hs = append(hs, [2]string{parts[i], parts[i+1]})
		}
	}
	return status, hs, string(f[respPrefix+n:])
}

func TestResponseFrameRoundTrip(t *testing.T) {
	w := newResponseWriter()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Add("Set-Cookie", "b=2")
	w.Header().Set("X-Evil", "x\r\nInjected: yes")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"ok":true}`))
	status, hs, body := parseFrame(t, w.frame())
	if status != http.StatusAccepted || body != `{"ok":true}` {
		t.Fatalf("status %d body %q", status, body)
	}
	got := map[string][]string{}
	for _, h := range hs {
		got[h[0]] = append(got[h[0]], h[1])
	}
	if len(got["Set-Cookie"]) != 2 || got["Content-Type"][0] != "application/json" {
		t.Fatalf("headers %v", got)
	}
	if v := got["X-Evil"]; len(v) != 1 || strings.ContainsAny(v[0], "\r\n") || len(got) != 3 {
		t.Fatalf("a line break in a header value must not add fields: %v", got)
	}

	// No headers, no body, no explicit status.
	status, hs, body = parseFrame(t, newResponseWriter().frame())
	if status != http.StatusOK || len(hs) != 0 || body != "" {
		t.Fatalf("empty response: %d %v %q", status, hs, body)
	}
	status, _, body = parseFrame(t, errorFrame(shared.Errorf(shared.EINVALID, "nope")))
	if status != http.StatusBadRequest || !strings.Contains(body, `"invalid"`) {
		t.Fatalf("error frame: %d %s", status, body)
	}
	if status, _, body = parseFrame(t, failureFrame("boom")); status != 0 || body != "boom" {
		t.Fatalf("failure frame: %d %q", status, body)
	}
}

func BenchmarkRequestResponseFrames(b *testing.B) {
	head := []byte("POST\nhttps://edge.example/v1/polls/p1/votes\ncontent-type\napplication/json\ncontent-length\n60\nhost\nedge.example")
	body := []byte(`{"token":"abcdefghijklmnopqrstuvwxyz0123456789abcdefgh","choice":1}`)
	b.ReportAllocs()
	for b.Loop() {
		req, err := decodeRequest(context.Background(), head, body)
		if err != nil {
			b.Fatal(err)
		}
		w := newResponseWriter()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"accepted"}`))
		_ = req
		if len(w.frame()) == 0 {
			b.Fatal("empty frame")
		}
		w.release()
	}
}

func TestIORequestFrame(t *testing.T) {
	f := appendIORequest(nil, "POST", "https://origin.example/v1/ingest",
		http.Header{"Content-Type": {"application/msgpack"}, "X-Evil": {"a\r\nb"}}, []byte("body"))
	n := int(binary.LittleEndian.Uint32(f))
	if n+4 > len(f) {
		t.Fatalf("head length %d past frame of %d", n, len(f))
	}
	r, err := decodeIORequest(f)
	if err != nil || r.Method != "POST" || r.URL != "https://origin.example/v1/ingest" ||
		r.Header.Get("X-Evil") != "a  b" || string(r.Body) != "body" {
		t.Fatalf("decodeIORequest: %+v, %v", r, err)
	}
	if _, err := decodeIORequest(f[:3]); shared.ErrorCode(err) != shared.EINTERNAL {
		t.Fatalf("short frame: err %v", err)
	}
	head, body := string(f[4:4+n]), string(f[4+n:])
	if body != "body" {
		t.Fatalf("body %q", body)
	}
	parts := strings.Split(head, "\n")
	if len(parts) != 6 || parts[0] != "POST" || parts[1] != "https://origin.example/v1/ingest" {
		t.Fatalf("head %q", head)
	}
	got := map[string]string{parts[2]: parts[3], parts[4]: parts[5]}
	if got["Content-Type"] != "application/msgpack" || got["X-Evil"] != "a  b" {
		t.Fatalf("headers %q", got)
	}
}

func TestDecodeResponseRoundTrip(t *testing.T) {
	f := appendResponse(nil, 304, http.Header{"Etag": {`"v1"`}, "Cache-Control": {"max-age=1", "public"}}, []byte("x"))
	r, err := decodeResponse(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 304 || r.Header.Get("ETag") != `"v1"` || len(r.Header.Values("Cache-Control")) != 2 || string(r.Body) != "x" {
		t.Fatalf("decoded %+v", r)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, appendResponse(nil, 0, nil, nil), appendResponse(nil, 700, nil, nil),
		{200, 0, 0, 0, 9, 0, 0, 0, 'a'}} {
		if _, err := decodeResponse(bad); shared.ErrorCode(err) != shared.EINTERNAL {
			t.Errorf("decodeResponse(%v): err %v, want EINTERNAL", bad, err)
		}
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(appendResponse(nil, 200, http.Header{"A": {"b"}}, []byte("body")))
	f.Add([]byte{200, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		if r.Status < 100 || r.Status > 599 || len(r.Body) > len(b) {
			t.Fatalf("accepted %v as %+v", b, r)
		}
	})
}

// checkSimpleURL fails when parseSimpleURL accepts raw but disagrees with url.Parse.
func checkSimpleURL(t *testing.T, raw string) {
	u, uri, ok := parseSimpleURL(raw)
	if !ok {
		return
	}
	want, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parseSimpleURL accepted %q, url.Parse refuses it: %v", raw, err)
	}
	if u.Scheme != want.Scheme || u.Host != want.Host || u.Path != want.Path || u.RawQuery != want.RawQuery ||
		u.RawPath != want.RawPath || uri != want.RequestURI() || u.String() != want.String() {
		t.Fatalf("parseSimpleURL(%q) = %#v %q; url.Parse gives %#v %q", raw, u, uri, want, want.RequestURI())
	}
}

func TestParseSimpleURL(t *testing.T) {
	for _, raw := range []string{
		"https://edge.example/v1/polls/p1/votes",
		"http://127.0.0.1:8787/v1/polls/p1/results?x=1&y=2",
		"https://edge.example/",
		"https://edge.example/a,b/c~d_e.f:g",
	} {
		if _, _, ok := parseSimpleURL(raw); !ok {
			t.Errorf("parseSimpleURL(%q) refused a simple URL", raw)
		}
		checkSimpleURL(t, raw)
	}
	for _, raw := range []string{
		"https://edge.example", "https://edge.example/a%20b", "https://u@edge.example/", "https://edge.example/#x",
		"ftp://edge.example/", "https://edge.example/a?b?c", "https://[::1]:80/", "https://edge.example/é", "/relative",
	} {
		if _, _, ok := parseSimpleURL(raw); ok {
			t.Errorf("parseSimpleURL(%q) took a URL it should leave to url.Parse", raw)
		}
	}
}

func FuzzParseSimpleURL(f *testing.F) {
	for _, s := range []string{"https://edge.example/v1/polls/p1/votes?x=1", "http://h:1/a", "https://a/b?c=d&e"} {
		f.Add(s)
	}
	f.Fuzz(checkSimpleURL)
}

func TestCanonicalHeader(t *testing.T) {
	for _, name := range []string{"accept", "accept-encoding", "accept-language", "access-control-request-headers",
		"access-control-request-method", "cache-control", "cf-connecting-ip", "cf-ipcountry", "cf-ray", "cf-visitor",
		"connection", "content-length", "content-type", "cookie", "host", "if-none-match", "origin", "referer",
		"user-agent", "x-forwarded-for", "x-forwarded-proto", "x-real-ip", "x-custom-thing", "sec-fetch-mode"} {
		if got, want := canonicalHeader(name), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("canonicalHeader(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte("POST\nhttps://edge.example/v1/polls/p1/votes\ncontent-type\napplication/json"), []byte(`{"choice":1}`))
	f.Add([]byte("GET\nhttp://h/a?b\naccept\nx\naccept\ny\nodd"), []byte(nil))
	f.Fuzz(func(t *testing.T, head, body []byte) {
		req, err := decodeRequest(context.Background(), head, body)
		if err != nil {
			return
		}
		if req.Method == "" || req.URL == nil || req.ContentLength != int64(len(body)) {
			t.Fatalf("decoded %q into %+v", head, req)
		}
	})
}

func TestResponseWriterReleaseClears(t *testing.T) {
	w := newResponseWriter()
	w.Header().Set("X-A", "1")
	w.WriteHeader(http.StatusTeapot)
	_, _ = w.Write([]byte("body"))
	if st, _, body := parseFrame(t, w.frame()); st != http.StatusTeapot || body != "body" {
		t.Fatalf("frame: %d %q", st, body)
	}
	w.release()
	if len(w.header) != 0 || w.status != 0 || w.body.Len() != 0 {
		t.Fatalf("released writer keeps state: %v %d %d", w.header, w.status, w.body.Len())
	}
	if st, hs, body := parseFrame(t, w.frame()); st != http.StatusOK || len(hs) != 0 || body != "" {
		t.Fatalf("reused writer frame: %d %v %q", st, hs, body)
	}
}
