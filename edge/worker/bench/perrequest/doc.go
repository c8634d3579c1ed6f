//go:build !(js && wasm && edgepoll_perrequest)

// Command perrequest is the edge handler behind syumai/workers' per-request
// glue, for bench-edge only; build it with GOOS=js GOARCH=wasm and
// -tags edgepoll_perrequest (so it links none of our own glue) and run it
// inside workerd.
package main

func main() { panic("perrequest runs inside workerd: see scripts/bench-edge.sh") }
