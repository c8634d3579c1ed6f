//go:build js && wasm && edgepoll_paniccheck

package main

import "net/http"

// Built only with -tags edgepoll_paniccheck (the workerd tests' build):
// GET /__panic panics in the handler, to show that a panic costs its own
// request a 500 and the isolate goes on serving. With standard Go the
// worker recovers it; with TinyGo, whose recover() does nothing on wasm,
// the instance traps and the glue starts a fresh one.
func init() {
	wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/__panic" {
				panic("edgepoll_paniccheck: GET /__panic")
			}
			h.ServeHTTP(w, r)
		})
	}
}
