// Package ratelimit is a GCRA (generic cell rate algorithm) limiter with
// bounded memory, keyed by 64-bit hashes so the hot path does not allocate.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows Rate events per Period per key with bursts of Burst. A key
// that keeps sending while refused is charged a little for each refusal, so
// a flood of more than 32 times the rate is refused outright. It keeps
// at most MaxKeys keys; when full it forgets keys whose state has expired, and
// then arbitrary keys (which only makes it more lenient). Safe for concurrent use.
type Limiter struct {
	interval int64 // nanoseconds between events at the sustained rate
	tau      int64 // burst tolerance in nanoseconds
	maxKeys  int

	mu  sync.Mutex
	tat map[uint64]int64 // theoretical arrival time per key, Unix nanoseconds
}

// refusedShare is how many refused events cost as much as one admitted.
const refusedShare = 32

// New returns a limiter of rate events per period with the given burst
// (≥ 1) keeping at most maxKeys keys.
func New(rate int, period time.Duration, burst, maxKeys int) *Limiter {
	if rate < 1 {
		rate = 1
	}
	if burst < 1 {
		burst = 1
	}
	if maxKeys < 1 {
		maxKeys = 1
	}
	iv := int64(period) / int64(rate)
	if iv < 1 {
		iv = 1
	}
	return &Limiter{interval: iv, tau: iv * int64(burst-1), maxKeys: maxKeys, tat: make(map[uint64]int64)}
}

// Allow reports whether an event for key at now conforms; if not, it also
// returns how long until one would.
func (l *Limiter) Allow(key uint64, now time.Time) (bool, time.Duration) {
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok || tat < t {
		tat = t
	}
	if tat-t > l.tau {
		// A client that keeps sending while refused pays for it: each
		// refusal moves its arrival time on by 1/refusedShare of an
		// interval, up to one burst beyond the limit. Past refusedShare
		// times its rate it is refused entirely until it slows down; one
		// that waits the Retry-After it was given pays one refusal.
		if ok {
			tat = min(tat+l.interval/refusedShare, t+2*l.tau+l.interval)
			l.tat[key] = tat
		}
		return false, time.Duration(tat - t - l.tau)
	}
	if !ok && len(l.tat) >= l.maxKeys {
		l.evict(t)
	}
	l.tat[key] = tat + l.interval
	return true, 0
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

// evict drops expired keys, or a quarter of all keys if none had expired.
func (l *Limiter) evict(now int64) {
	n := len(l.tat)
	for k, tat := range l.tat {
		if tat <= now {
			delete(l.tat, k)
		}
	}
	if len(l.tat) < n {
		return
	}
	drop := n/4 + 1
	for k := range l.tat {
		if drop == 0 {
			break
		}
		delete(l.tat, k)
		drop--
	}
}

// Key hashes s with FNV-1a into a limiter key, without allocating.
func Key(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
