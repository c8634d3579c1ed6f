//go:build js && wasm && edgepoll_perrequest

package worker

import "net/http"

// Serve is not available in a build for syumai/workers' per-request glue
// (tag edgepoll_perrequest): that build must not link the one-instance
// glue's imports and exports, which only edge/worker/glue provides.
func Serve(http.Handler, Consumer) {
	panic("worker.Serve: built with edgepoll_perrequest; serve with syumai/workers instead")
}
