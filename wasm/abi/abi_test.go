package abi_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/abi"
)

// TestRequestExample pins the example in ABI.md byte for byte.
func TestRequestExample(t *testing.T) {
	req := abi.Request{Method: "GET", URI: "/v1/polls/p1", RemoteAddr: "10.0.0.1:5000", Header: []string{"Host", "x"}}
	want := "9601a3474554ac2f76312f706f6c6c732f7031ad31302e302e302e313a3530303092a4486f7374a178c400"
	if got := hex.EncodeToString(req.Append(nil)); got != want {
		t.Fatalf("encoding = %s\nwant       %s (ABI.md example)", got, want)
	}
	head := abi.AppendRequestHead(nil, []byte("GET"), []byte("/v1/polls/p1"), []byte("10.0.0.1:5000"), 1)
	head = abi.AppendStringBytes(head, []byte("Host"))
	head = abi.AppendStringBytes(head, []byte("x"))
	if got := hex.EncodeToString(abi.AppendRequestBody(head, nil)); got != want {
		t.Fatalf("streamed encoding = %s, want %s", got, want)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	in := abi.Request{
		Method: "POST", URI: "/v1/polls/p1/votes?x=" + strings.Repeat("y", 300), RemoteAddr: "[::1]:1",
		Header: []string{"Content-Type", "application/json", "X-Long", strings.Repeat("v", 70000%abi.MaxHeaderBytes)},
		Body:   bytes.Repeat([]byte{0xff}, 70000),
	}
	var out abi.Request
	if err := abi.DecodeRequest(in.Append(nil), &out); err != nil {
		t.Fatal(err)
	}
	if out.Method != in.Method || out.URI != in.URI || out.RemoteAddr != in.RemoteAddr ||
		strings.Join(out.Header, "|") != strings.Join(in.Header, "|") || !bytes.Equal(out.Body, in.Body) {
		t.Fatalf("round trip changed the request")
	}
}

func TestResponseRoundTrip(t *testing.T) {
	b := abi.AppendResponseHead(nil, 202, 2)
	for _, s := range []string{"Content-Type", "application/json", "Set-Cookie", "a=b"} {
		b = abi.AppendString(b, s)
	}
	b = abi.AppendBytes(b, []byte(`{"ok":true}`))
	var r abi.Response
	if err := abi.DecodeResponse(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 202 || len(r.Header) != 4 || string(r.Header[3]) != "a=b" || string(r.Body) != `{"ok":true}` {
		t.Fatalf("decoded %+v", r)
	}
}

func TestVoteRoundTrip(t *testing.T) {
	in := shared.Vote{Poll: "p1", Voter: shared.VoterID{1, 2, 3}, Choices: []uint8{0, 3}, At: 1_700_000_000_000}
	var out shared.Vote
	if err := abi.DecodeVote(abi.AppendVote(nil, &in), &out); err != nil {
		t.Fatal(err)
	}
	if out.Poll != in.Poll || out.Voter != in.Voter || !bytes.Equal(out.Choices, in.Choices) || out.At != in.At {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	bad := in
	bad.Voter = shared.VoterID{}
	if err := abi.DecodeVote(abi.AppendVote(nil, &bad), &out); shared.ErrorCode(err) != shared.EINVALID {
		t.Fatalf("zero voter: err %v, want EINVALID", err)
	}
}

func TestCachedRoundTrip(t *testing.T) {
	in := abi.Cached{Status: 403, ContentType: "application/json", ETag: `"e1"`, CacheControl: "public, max-age=1", Body: []byte(`{}`)}
	var out abi.Cached
	if err := abi.DecodeCached(in.Append(nil), &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != 403 || out.ETag != `"e1"` || out.CacheControl != in.CacheControl || string(out.Body) != "{}" {
		t.Fatalf("got %+v", out)
	}
}

func TestAttrs(t *testing.T) {
	kv, err := abi.DecodeAttrs(abi.AppendAttrs(nil, []string{"poll", "p1", "err", "boom", "odd"}))
	if err != nil || strings.Join(kv, ",") != "poll,p1,err,boom" {
		t.Fatalf("attrs = %v, %v", kv, err)
	}
	if kv, err := abi.DecodeAttrs(nil); err != nil || kv != nil {
		t.Fatalf("empty attrs = %v, %v", kv, err)
	}
}

func TestIntegers(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 32, -1, -32, -33, -128, -129, -32768, -32769, -1 << 31, -1<<31 - 1, -1 << 62} {
		r := abi.NewReader(abi.AppendInt(nil, v))
		if got := r.Int("n"); got != v || r.Done("n") != nil {
			t.Errorf("Int(%d) = %d, %v", v, got, r.Err())
		}
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		r := abi.NewReader(abi.AppendArrayHeader(nil, n))
		if got := r.ArrayHeader(1<<20, "a"); got != n {
			t.Errorf("ArrayHeader(%d) = %d, %v", n, got, r.Err())
		}
	}
}

// TestStrict: every truncation of a valid request and assorted garbage fail
// with EINVALID, never panic.
func TestStrict(t *testing.T) {
	valid := (&abi.Request{Method: "GET", URI: "/", Header: []string{"A", "b"}, Body: []byte("x")}).Append(nil)
	var req abi.Request
	for i := range valid {
		if err := abi.DecodeRequest(valid[:i], &req); shared.ErrorCode(err) != shared.EINVALID {
			t.Fatalf("truncated at %d: err %v, want EINVALID", i, err)
		}
	}
	cases := map[string][]byte{
		"trailing":      append(append([]byte(nil), valid...), 0),
		"version 2":     append([]byte{0x96, 0x02}, valid[2:]...),
		"odd headers":   {0x96, 0x01, 0xa0, 0xa1, '/', 0xa0, 0x91, 0xa0, 0xc4, 0x00},
		"huge array":    {0xdd, 0xff, 0xff, 0xff, 0xff},
		"not an array":  {0xc0},
		"string length": {0x96, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		if err := abi.DecodeRequest(b, &req); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
	var resp abi.Response
	if err := abi.DecodeResponse([]byte{0x94, 0x01, 0x05, 0x90, 0xc4, 0x00}, &resp); err == nil {
		t.Error("status 5 accepted")
	}
}

func TestStatus(t *testing.T) {
	for _, c := range []shared.Code{shared.EINVALID, shared.ENOTFOUND, shared.ECONFLICT, shared.EUNAUTHORIZED, shared.EFORBIDDEN,
		shared.ERATELIMITED, shared.EUNAVAILABLE, shared.EINTERNAL, shared.ETOOLARGE, shared.EUNSUPPORTED} {
		st := abi.StatusOf(shared.Errorf(c, "x"))
		if st == abi.StatusOK || st.Code() != c {
			t.Errorf("code %s → status %d → %s", c, st, st.Code())
		}
		err := st.Err("msg")
		if shared.ErrorCode(err) != c || shared.ErrorMessage(err) != "msg" {
			t.Errorf("status %d: Err = %v", st, err)
		}
	}
	if abi.StatusOf(nil) != abi.StatusOK || abi.StatusOf(errors.New("x")) != abi.StatusInternal || abi.Status(99).Code() != shared.EINTERNAL {
		t.Error("nil, plain error or unknown status mapped wrongly")
	}
	s, n := abi.UnpackResult(abi.PackResult(abi.StatusUnavailable, 42))
	p, l := abi.UnpackPtrLen(abi.PackPtrLen(0xdeadbeef, 7))
	if s != abi.StatusUnavailable || n != 42 || p != 0xdeadbeef || l != 7 {
		t.Error("packing does not round-trip")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add((&abi.Request{Method: "GET", URI: "/v1/polls/p1", Header: []string{"Host", "x"}}).Append(nil))
	f.Add((&abi.Request{Method: "POST", URI: "/v1/polls/p1/votes", Body: []byte(`{"choice":1}`)}).Append(nil))
	f.Add([]byte{0x96, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req abi.Request
		if err := abi.DecodeRequest(b, &req); err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		var again abi.Request
		if err := abi.DecodeRequest(req.Append(nil), &again); err != nil || again.URI != req.URI || !bytes.Equal(again.Body, req.Body) {
			t.Fatalf("re-encoding failed: %v", err)
		}
	})
}

func BenchmarkRequestAppendDecode(b *testing.B) {
	req := abi.Request{Method: "POST", URI: "/v1/polls/p1/votes", RemoteAddr: "127.0.0.1:1",
		Header: []string{"Host", "x", "Content-Type", "application/json"}, Body: make([]byte, 80)}
	var buf []byte
	var out abi.Request
	b.ReportAllocs()
	for range b.N {
		buf = req.Append(buf[:0])
		if err := abi.DecodeRequest(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
