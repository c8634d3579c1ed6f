// Package pages serves the audience's pages (the voting page, the big-screen
// view, embed.js and their assets, built into a directory by
// scripts/build-web.mjs) from the harness, with the same paths and headers
// as the Worker's static assets: /p/{id}, /p/{id}/screen, /embed.js and
// /assets/*.
package pages

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
)

// Manifest is the build's manifest.json.
type Manifest struct {
	Vote   string   `json:"vote"`
	Screen string   `json:"screen"`
	Embed  string   `json:"embed"`
	Assets []string `json:"assets"`
}

// file is one servable file, kept in memory with its gzip form.
type file struct {
	body, gz    []byte
	ctype, etag string
	cache       string
	csp         bool
}

// Site is a loaded build directory.
type Site struct {
	vote, screen, embed *file
	assets              map[string]*file
	csp                 string
}

// Load reads the build directory dir; allowed are the ALLOWED_ORIGINS that
// may frame the pages.
func Load(dir string, allowed []string) (*Site, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("pages: %w (build them with node scripts/build-web.mjs)", err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("pages: %s/manifest.json: %w", dir, err)
	}
	s := &Site{assets: map[string]*file{}, csp: edge.PageCSP(allowed)}
	read := func(name, cache string, csp bool) (*file, error) {
		if name == "" || strings.Contains(name, "..") {
			return nil, fmt.Errorf("pages: manifest names %q", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("pages: %w", err)
		}
		return newFile(name, b, cache, csp)
	}
	if s.vote, err = read(m.Vote, edge.PageCacheControl, true); err != nil {
		return nil, err
	}
	if s.screen, err = read(m.Screen, edge.PageCacheControl, true); err != nil {
		return nil, err
	}
	if s.embed, err = read(m.Embed, edge.EmbedCacheControl, false); err != nil {
		return nil, err
	}
	for _, a := range m.Assets {
		a = strings.TrimPrefix(a, "/")
		f, err := read(a, edge.AssetCacheControl, false)
		if err != nil {
			return nil, err
		}
		s.assets["/"+a] = f
	}
	return s, nil
}

func newFile(name string, b []byte, cache string, csp bool) (*file, error) {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js", ".mjs":
		ctype = "text/javascript; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return &file{body: b, gz: gz.Bytes(), ctype: ctype, cache: cache, csp: csp,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}, nil
}

// route picks the file for a request path, or nil when the path is not a
// page's.
func (s *Site) route(p string) *file {
	switch {
	case p == "/embed.js":
		return s.embed
	case strings.HasPrefix(p, "/assets/"):
		return s.assets[p]
	case strings.HasPrefix(p, "/p/"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(p, "/p/"), "/")
		if !shared.ValidPollID(id) {
			return nil
		}
		switch rest {
		case "":
			return s.vote
		case "screen", "screen/":
			return s.screen
		}
	}
	return nil
}

// Serve answers rc when its path is a page's and reports whether it did.
func (s *Site) Serve(rc *fasthttp.RequestCtx) bool {
	f := s.route(string(rc.Path()))
	if f == nil {
		return false
	}
	if !rc.IsGet() && !rc.IsHead() {
		rc.Response.Header.Set("Allow", "GET, HEAD")
		rc.SetContentType("application/json")
		rc.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		rc.SetBody(shared.AppendErrorJSON(nil, shared.Errorf(shared.EINVALID, "method %s not allowed; use GET or HEAD", rc.Method())))
		return true
	}
	h := &rc.Response.Header
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", f.cache)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", edge.ReferrerPolicy)
	h.Set("Vary", "Accept-Encoding")
	if f.csp {
		h.Set("Content-Security-Policy", s.csp)
	}
	if inm := string(rc.Request.Header.Peek("If-None-Match")); inm != "" && strings.Contains(inm, f.etag) {
		rc.SetStatusCode(fasthttp.StatusNotModified)
		return true
	}
	body := f.body
	if bytes.Contains(rc.Request.Header.Peek("Accept-Encoding"), []byte("gzip")) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	if rc.IsHead() {
		h.SetContentLength(len(body))
		rc.Response.SkipBody = true
		return true
	}
	rc.SetBody(body)
	return true
}
