//go:build !(js && wasm)

// Command worker is edgepoll's Cloudflare Worker. It only runs as
// GOOS=js GOARCH=wasm inside workerd; build it with `make edge`.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "edge/cmd/worker runs inside a Cloudflare Worker: build it with `make edge` (GOOS=js GOARCH=wasm) and run it with wrangler")
	os.Exit(2)
}
