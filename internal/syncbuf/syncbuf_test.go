package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
)

func TestConcurrentWritesAndTail(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = b.Write([]byte("ab"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); len(got) != 1600 || strings.Trim(got, "ab") != "" {
		t.Fatalf("buffer holds %d bytes %q…", len(got), got[:min(len(got), 20)])
	}
	if got := b.Tail(4); got != "…abab" {
		t.Fatalf("Tail(4) = %q", got)
	}
	var short syncbuf.Buffer
	_, _ = short.Write([]byte("xy"))
	if got := short.Tail(4); got != "xy" {
		t.Fatalf("Tail of a short buffer = %q", got)
	}
}
