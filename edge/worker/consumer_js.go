//go:build js && wasm

package worker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Consume is the queue consumer: each message is one MessagePack batch. The
// batches of one delivery are merged into as few batches as the limits allow
// (see coalesce), each signed with the ingest key and posted to the origin's
// ingest endpoint. 2xx acks; 5xx, 408, 429 and network errors retry with
// growing delays; a 4xx means the origin refuses the batch itself, so it is
// logged loudly and retried until max_retries moves it to the dead-letter
// queue: no batch is ever dropped silently. Posts run concurrently. It
// returns one verdict per message: 0 to ack, else the retry delay.
func (h *Host) Consume(ctx context.Context, msgs []Message) []time.Duration {
	out := make([]time.Duration, len(msgs))
	var wg sync.WaitGroup
	for _, p := range coalesce(msgs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The post's fate is every message's; a merged post retries as
			// soon as its most-retried message asks.
			attempts := 0
			for _, i := range p.msgs {
				attempts = max(attempts, msgs[i].Attempts)
			}
			m := Message{ID: msgs[p.msgs[0]].ID, Body: p.body, Attempts: attempts}
			if len(p.msgs) > 1 {
				m.ID = fmt.Sprintf("%s+%d", m.ID, len(p.msgs)-1)
			}
			d := h.deliver(ctx, &m)
			for _, i := range p.msgs {
				out[i] = d
			}
		}()
	}
	wg.Wait()
	return out
}

func (h *Host) deliver(ctx context.Context, m *Message) time.Duration {
	if m.Body == nil {
		h.Log("error", "queue message is not a byte batch; leaving it for the dead-letter queue",
			"message", m.ID, "attempts", m.Attempts)
		return retryDelay(m.Attempts, true)
	}
	status, detail, err := h.ingest(ctx, m.Body)
	switch classify(status, err) {
	case outcomeAck:
		return 0
	case outcomeRetry:
		d := retryDelay(m.Attempts, false)
		attrs := []any{"message", m.ID, "attempts", m.Attempts, "status", status, "retry_in", d.String()}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		h.Log("warn", "ingest failed; retrying", attrs...)
		return d
	default:
		h.Log("error", "origin refused batch; retrying until it reaches the dead-letter queue",
			"message", m.ID, "attempts", m.Attempts, "status", status, "detail", detail, "bytes", len(m.Body))
		return retryDelay(m.Attempts, true)
	}
}

// ingest signs body and posts it to the origin, returning the status and, for
// a refusal, the start of the origin's error body.
func (h *Host) ingest(ctx context.Context, body []byte) (int, string, error) {
	sig := sign.Sign(h.opt.IngestKey, time.Now(), body)
	hd := http.Header{
		"Content-Type": {shared.ContentTypeMsgpack},
	}
	sig.SetHeaders(hd.Set)
	res, err := h.fetch(ctx, http.MethodPost, h.opt.OriginURL+"/v1/ingest", hd, body)
	if err != nil {
		return 0, "", err
	}
	if res.Status < 300 {
		return res.Status, "", nil
	}
	detail := string(res.Body)
	if len(detail) > 512 {
		detail = detail[:512]
	}
	return res.Status, detail, nil
}
