//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/wasm/abi"
)

// TestHandleNative runs the guest's request/response plumbing natively (the
// host imports are the native twins: no services), so encoding and decoding
// are tested without wazero; the wazero path is tested in wasm/harness.
func TestHandleNative(t *testing.T) {
	nativeEnv["TOKEN_SECRET"] = strings.Repeat("s", 40)
	nativeEnv["COOKIE_SECURE"] = "false"
	if msg := initGuest(); msg != "" {
		t.Fatalf("initGuest: %s", msg)
	}
	for _, c := range []struct {
		name   string
		req    abi.Request
		status int
		body   string
	}{
		{"unknown route", abi.Request{Method: "GET", URI: "/nope", RemoteAddr: "1.2.3.4:5"}, 404, `"code":"not_found"`},
		{"origin unavailable", abi.Request{Method: "GET", URI: "/v1/polls/p1", RemoteAddr: "1.2.3.4:5", Header: []string{"Host", "edge"}}, 503, `"code":"unavailable"`},
		{"bad uri", abi.Request{Method: "GET", URI: "no-slash"}, 400, `"code":"invalid"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var resp abi.Response
			if err := abi.DecodeResponse(handle(c.req.Append(nil)), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Status != c.status || !strings.Contains(string(resp.Body), c.body) {
				t.Fatalf("got %d %s, want %d with %s", resp.Status, resp.Body, c.status, c.body)
			}
			ct := ""
			for i := 0; i+1 < len(resp.Header); i += 2 {
				if strings.EqualFold(string(resp.Header[i]), "Content-Type") {
					ct = string(resp.Header[i+1])
				}
			}
			if !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
		})
	}
	var resp abi.Response
	if err := abi.DecodeResponse(handle([]byte{0xc1}), &resp); err != nil || resp.Status != 400 {
		t.Fatalf("garbage request: %d, %v; want 400", resp.Status, err)
	}
}
