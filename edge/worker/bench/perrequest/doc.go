//go:build !(js && wasm)

// Command perrequest is the edge handler behind syumai/workers' per-request
// glue, for bench-edge only; it runs as GOOS=js GOARCH=wasm inside workerd.
package main

func main() { panic("perrequest runs inside workerd: see scripts/bench-edge.sh") }
