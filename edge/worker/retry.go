package worker

import "time"

// Delivery outcomes for one queue message (one signed batch).
const (
	outcomeAck   = iota // the origin applied it (2xx)
	outcomeRetry        // transient failure: retry with backoff
	outcomeBad          // the origin refused it (4xx): retry without hope until the DLQ takes it
)

// maxRetryDelay caps the consumer's backoff.
const maxRetryDelay = 5 * time.Minute

// classify maps an ingest attempt's HTTP status (0 with err set for a
// network failure) to what the consumer does with the message.
func classify(status int, err error) int {
	switch {
	case err != nil || status == 0:
		return outcomeRetry
	case status >= 200 && status < 300:
		return outcomeAck
	case status == 408 || status == 429 || status >= 500:
		return outcomeRetry
	default:
		return outcomeBad
	}
}

// retryDelay is the backoff before the next delivery of a message that has
// been attempted attempts times (1 on its first delivery): 1 s, 2 s, 4 s, …
// capped at maxRetryDelay. A refused batch (bad) is retried after the cap so
// it reaches the dead-letter queue without hammering the origin.
func retryDelay(attempts int, bad bool) time.Duration {
	if bad {
		return maxRetryDelay / 5
	}
	if attempts < 1 {
		attempts = 1
	}
	if attempts > 9 {
		return maxRetryDelay
	}
	d := time.Second << (attempts - 1)
	if d > maxRetryDelay {
		d = maxRetryDelay
	}
	return d
}
