// Command tokens prints n voter tokens for one poll, one per line, signed with
// TOKEN_SECRET exactly as the edge issues them, so bench-edge can vote with
// many distinct voters without first fetching a token for each.
package main

import (
	"bufio"
	"crypto/rand"
	"flag"
	"fmt"
	"os"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

func main() {
	poll := flag.String("poll", "", "poll id")
	n := flag.Int("n", 100000, "number of tokens")
	flag.Parse()
	secret := os.Getenv("TOKEN_SECRET")
	if *poll == "" || len(secret) < 32 {
		fmt.Fprintln(os.Stderr, "usage: TOKEN_SECRET=<>=32 bytes> tokens -poll ID [-n N]")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; i < *n; i++ {
		var v shared.VoterID
		_, _ = rand.Read(v[:])
		fmt.Fprintln(w, token.Issue([]byte(secret), *poll, v))
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "tokens:", err)
		os.Exit(1)
	}
}
