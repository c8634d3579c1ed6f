package edge_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

// discard is a reusable http.ResponseWriter that keeps only the status.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }

// body is a reusable request body.
type body struct{ bytes.Reader }

func (*body) Close() error { return nil }

// VoteBodies returns n JSON vote bodies for poll, each from a distinct voter
// whose token is signed with secret.
func voteBodies(secret []byte, poll string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var v shared.VoterID
		v[0], v[1], v[2], v[3], v[15] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 1
		out[i] = []byte(`{"token":"` + token.Issue(secret, poll, v) + `","choice":` + string(rune('0'+i%3)) + `}`)
	}
	return out
}

// BenchmarkVote measures one vote request through the handler: per-IP and
// per-voter GCRA, body read, strict JSON decode, token HMAC, poll lookup,
// validation, dedupe and the 202 response, with a host whose Submit is a
// no-op. Every iteration is a distinct voter. The wasm benchmark mirrors it.
func BenchmarkVote(b *testing.B) {
	host := edgetest.NewFakeHost()
	edgetest.Seed(host)
	host.SetSubmitFunc(func(context.Context, *shared.Vote) error { return nil })
	cfg := edgetest.TableConfig()
	cfg.VoteRate = edge.Rate{N: -1}
	cfg.VoterRate = edge.DefaultVoterRate
	h := edge.New(cfg, host)
	bodies := voteBodies(cfg.TokenSecret, "open1", b.N)
	u, _ := url.Parse("http://edge.test/v1/polls/open1/votes")
	rb := &body{}
	req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{
		"Content-Type":     {"application/json"},
		"Cf-Connecting-Ip": {edgetest.ClientIP},
	}, Body: rb, RemoteAddr: "192.0.2.1:1234"}
	req = req.WithContext(context.Background())
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rb.Reset(bodies[i])
		req.ContentLength = int64(len(bodies[i]))
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.status != http.StatusAccepted {
			b.Fatalf("vote %d: status %d", i, w.status)
		}
	}
}

// BenchmarkVoteCheck measures GET /v1/polls/{id}/vote through the handler:
// token from the Authorization header, HMAC, the per-voter check limit and
// the JSON answer, with a host whose Voted answers from memory (the real
// hosts answer from a 2 s cache most of the time).
func BenchmarkVoteCheck(b *testing.B) {
	host := edgetest.NewFakeHost()
	edgetest.Seed(host)
	cfg := edgetest.TableConfig()
	cfg.CheckRate = edge.Rate{N: -1}
	h := edge.New(cfg, host)
	var v shared.VoterID
	v[0], v[15] = 7, 1
	host.SetVoted("open1", v, true)
	u, _ := url.Parse("http://edge.test/v1/polls/open1/vote")
	req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{
		"Authorization":    {"Bearer " + token.Issue(cfg.TokenSecret, "open1", v)},
		"Cf-Connecting-Ip": {edgetest.ClientIP},
	}, RemoteAddr: "192.0.2.1:1234"}
	req = req.WithContext(context.Background())
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("check %d: status %d", i, w.status)
		}
	}
}
