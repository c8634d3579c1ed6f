//go:build linux

package chaos

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Proxy modes.
const (
	modePass int32 = iota // forward each request to the next origin
	modeCut               // hold each request, then drop its connection unanswered
	modeDup               // forward, and deliver every ingest request twice
)

// proxy is an HTTP fault proxy between the edge and the origins: it sends
// requests to the origins in turn and, by mode, forwards them, cuts the
// path, or delivers every batch twice.
type proxy struct {
	origins []string // base URLs
	mode    atomic.Int32
	next    atomic.Uint64
	dups    atomic.Int64 // ingest requests delivered a second time
	dropped atomic.Int64 // requests dropped unanswered
	client  *http.Client
	srv     *http.Server
	url     string
}

// startProxy listens on a free loopback port.
func startProxy(origins []string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{origins: origins, url: "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *proxy) close() { p.srv.Close() }

// drop closes the client's connection without an answer.
func (p *proxy) drop(w http.ResponseWriter) {
	p.dropped.Add(1)
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		p.drop(w)
		return
	}
	if p.mode.Load() == modeCut {
		// A blackhole for a while (the edge's request times out or gives
		// up), then the connection is dropped.
		for i := 0; i < 40 && p.mode.Load() == modeCut && r.Context().Err() == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		p.drop(w)
		return
	}
	base := p.origins[p.next.Add(1)%uint64(len(p.origins))]
	times := 1
	if p.mode.Load() == modeDup && r.Method == http.MethodPost && r.URL.Path == "/v1/ingest" {
		times = 2
	}
	var resp *http.Response
	var rb []byte
	for i := 0; i < times; i++ {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			p.drop(w)
			return
		}
		req.Header = r.Header.Clone()
		req.Host = ""
		resp, err = p.client.Do(req)
		if err != nil {
			p.drop(w)
			return
		}
		rb, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			p.drop(w)
			return
		}
		if i > 0 {
			p.dups.Add(1)
		}
	}
	for k, v := range resp.Header {
		if k != "Content-Length" && k != "Connection" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}
