package ratelimit_test

import (
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared/ratelimit"
)

func TestGCRA(t *testing.T) {
	l := ratelimit.New(10, time.Second, 3, 100) // 1 per 100ms, burst 3
	now := time.Unix(100, 0)
	k := ratelimit.Key("1.2.3.4")
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow(k, now); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	ok, retry := l.Allow(k, now)
	// 100ms to the next interval, plus the refusal's charge of 100ms/32.
	if want := 100*time.Millisecond + 100*time.Millisecond/32; ok || retry != want {
		t.Fatalf("4th: ok=%v retry=%v, want refused with %v", ok, retry, want)
	}
	if ok, _ := l.Allow(ratelimit.Key("5.6.7.8"), now); !ok {
		t.Fatal("other key refused")
	}
	if ok, _ := l.Allow(k, now.Add(retry)); !ok {
		t.Fatal("refused after the Retry-After it was given")
	}
	if ok, _ := l.Allow(k, now.Add(retry)); ok {
		t.Fatal("allowed twice in one interval at the sustained rate")
	}
}

// admitted runs a client sending every gap for d against a limiter of 10/s
// burst 5 and returns how many of its events were admitted after the burst.
func admitted(gap, d time.Duration, honourRetry bool) (admitted, sent int) {
	l := ratelimit.New(10, time.Second, 5, 100)
	start := time.Unix(100, 0)
	for at := start; at.Before(start.Add(d)); at = at.Add(gap) {
		ok, retry := l.Allow(1, at)
		sent++
		if ok {
			admitted++
		} else if honourRetry {
			at = at.Add(retry - gap)
		}
	}
	return admitted - 5, sent
}

func TestFloodRefusedOutright(t *testing.T) {
	// 50× the rate: after its burst the flooder gets nothing through.
	if n, sent := admitted(2*time.Millisecond, 10*time.Second, false); n != 0 {
		t.Fatalf("a 50× flood got %d of %d events through after its burst", n, sent)
	}
	// 2× the rate: still close to its share (the rate itself, 10/s).
	if n, _ := admitted(50*time.Millisecond, 10*time.Second, false); n < 90 || n > 100 {
		t.Fatalf("a 2× client got %d events through in 10 s, want about 100 (10/s)", n)
	}
	// A client that waits as told gets the rate, less a 32nd for the one
	// refusal it meets between admissions.
	if n, _ := admitted(time.Millisecond, 10*time.Second, true); n < 95 || n > 100 {
		t.Fatalf("a client honouring Retry-After got %d events through in 10 s, want about 97", n)
	}
}

func TestFloodDebtIsBounded(t *testing.T) {
	l := ratelimit.New(10, time.Second, 5, 100)
	now := time.Unix(100, 0)
	var worst time.Duration
	for i := 0; i < 100_000; i++ {
		if _, retry := l.Allow(1, now); retry > worst {
			worst = retry
		}
	}
	// At most one burst beyond the limit: 5 intervals of 100ms.
	if worst > 500*time.Millisecond {
		t.Fatalf("Retry-After grew to %v after a long flood, want ≤ 500ms", worst)
	}
	if ok, _ := l.Allow(1, now.Add(worst)); !ok {
		t.Fatalf("refused after waiting the longest Retry-After (%v)", worst)
	}
}

func TestBoundedKeys(t *testing.T) {
	l := ratelimit.New(1, time.Hour, 1, 64)
	now := time.Unix(100, 0)
	for i := uint64(0); i < 10_000; i++ {
		l.Allow(i, now)
	}
	if n := l.Len(); n > 64 {
		t.Fatalf("holds %d keys, max 64", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(100, time.Second, 10, 1<<16)
	now := time.Now()
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		l.Allow(i&0xffff, now)
	}
}
