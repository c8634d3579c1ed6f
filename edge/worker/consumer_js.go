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
			d := h.deliver(ctx, &m, &p)
			for _, i := range p.msgs {
				out[i] = d
			}
		}()
	}
	wg.Wait()
	return out
}

// batchAttrs are the log fields naming a posted batch: its id (the one the
// origin logs and the ledger records), the edge that sent it, its votes,
// and the ids of the batches merged into it.
func batchAttrs(m *Message, p *posting) []any {
	attrs := []any{"batch", p.head.ID.String(), "batch_edge", p.head.Edge, "votes", p.head.Votes,
		"message", m.ID, "attempts", m.Attempts}
	if len(p.merged) > 0 {
		ids := make([]string, len(p.merged))
		for i, id := range p.merged {
			ids[i] = id.String()
		}
		attrs = append(attrs, "merged", ids)
	}
	return attrs
}

func (h *Host) deliver(ctx context.Context, m *Message, p *posting) time.Duration {
	// The queue moves a message to the dead-letter queue once it has been
	// delivered max_retries times; say so on its last attempt.
	last := h.opt.MaxRetries > 0 && m.Attempts >= h.opt.MaxRetries
	if m.Body == nil {
		h.Log("error", "queue message is not a byte batch; leaving it for the dead-letter queue",
			"message", m.ID, "attempts", m.Attempts, "dead_letter", last)
		return retryDelay(m.Attempts, true)
	}
	status, detail, err := h.ingest(ctx, m.Body)
	attrs := append(batchAttrs(m, p), "status", status)
	switch classify(status, err) {
	case outcomeAck:
		h.Log("info", "batch delivered", attrs...)
		return 0
	case outcomeRetry:
		d := retryDelay(m.Attempts, false)
		attrs = append(attrs, "retry_in", d.String(), "dead_letter", last)
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		if last {
			h.Log("error", "ingest failed on the last attempt; the queue sends the batch to the dead-letter queue", attrs...)
		} else {
			h.Log("warn", "ingest failed; retrying", attrs...)
		}
		return d
	default:
		attrs = append(attrs, "detail", detail, "bytes", len(m.Body), "dead_letter", last)
		if last {
			h.Log("error", "origin refused batch on the last attempt; the queue sends it to the dead-letter queue", attrs...)
		} else {
			h.Log("error", "origin refused batch; retrying until it reaches the dead-letter queue", attrs...)
		}
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
