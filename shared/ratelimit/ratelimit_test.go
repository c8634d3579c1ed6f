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
	if ok || retry != 100*time.Millisecond {
		t.Fatalf("4th: ok=%v retry=%v, want refused with 100ms", ok, retry)
	}
	if ok, _ := l.Allow(ratelimit.Key("5.6.7.8"), now); !ok {
		t.Fatal("other key refused")
	}
	if ok, _ := l.Allow(k, now.Add(100*time.Millisecond)); !ok {
		t.Fatal("refused after the emission interval")
	}
	if ok, _ := l.Allow(k, now.Add(100*time.Millisecond)); ok {
		t.Fatal("allowed twice in one interval at the sustained rate")
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
