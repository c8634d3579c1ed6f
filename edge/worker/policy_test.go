package worker

import (
	"errors"
	"testing"
	"time"
)

func TestClassifyIngestOutcome(t *testing.T) {
	for _, tc := range []struct {
		status int
		err    error
		want   int
	}{
		{200, nil, outcomeAck},
		{204, nil, outcomeAck},
		{0, errors.New("connection refused"), outcomeRetry},
		{500, nil, outcomeRetry},
		{503, nil, outcomeRetry},
		{429, nil, outcomeRetry},
		{408, nil, outcomeRetry},
		{400, nil, outcomeBad},
		{401, nil, outcomeBad},
		{413, nil, outcomeBad},
		{415, nil, outcomeBad},
	} {
		if got := classify(tc.status, tc.err); got != tc.want {
			t.Errorf("classify(%d, %v) = %d, want %d", tc.status, tc.err, got, tc.want)
		}
	}
}

func TestRetryDelayGrowsAndIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for a := 1; a <= 20; a++ {
		d := retryDelay(a, false)
		if d < prev {
			t.Fatalf("attempt %d: delay %v shrank from %v", a, d, prev)
		}
		if d > maxRetryDelay {
			t.Fatalf("attempt %d: delay %v above cap %v", a, d, maxRetryDelay)
		}
		prev = d
	}
	if retryDelay(1, false) != time.Second || retryDelay(3, false) != 4*time.Second {
		t.Fatalf("want 1s, 2s, 4s…: got %v, %v", retryDelay(1, false), retryDelay(3, false))
	}
	if retryDelay(20, false) != maxRetryDelay {
		t.Fatalf("attempt 20: %v, want the cap", retryDelay(20, false))
	}
	if d := retryDelay(1, true); d < time.Minute/2 {
		t.Fatalf("a refused batch is retried after %v; want a long delay on its way to the DLQ", d)
	}
}
