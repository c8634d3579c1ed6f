//go:build js && wasm

package worker

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Consume is the queue consumer: each message is one MessagePack batch,
// which it signs with the ingest key and posts to the origin's ingest
// endpoint. 2xx acks; 5xx, 408, 429 and network errors retry with growing
// delays; a 4xx means the origin refuses the batch itself, so it is logged
// loudly and retried until max_retries moves it to the dead-letter queue:
// no batch is ever dropped silently. Messages of one delivery are posted
// concurrently. It returns one verdict per message: 0 to ack, else the
// retry delay.
func (h *Host) Consume(msgs []Message) []time.Duration {
	out := make([]time.Duration, len(msgs))
	var wg sync.WaitGroup
	for i := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h.deliver(&msgs[i])
		}()
	}
	wg.Wait()
	return out
}

func (h *Host) deliver(m *Message) time.Duration {
	if m.Body == nil {
		h.Log("error", "queue message is not a byte batch; leaving it for the dead-letter queue",
			"message", m.ID, "attempts", m.Attempts)
		return retryDelay(m.Attempts, true)
	}
	status, detail, err := h.ingest(m.Body)
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
func (h *Host) ingest(body []byte) (int, string, error) {
	sig := sign.Sign(h.opt.IngestKey, time.Now(), body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		h.opt.OriginURL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, "", shared.Wrap(shared.EINTERNAL, err, "ingest request")
	}
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	req.Header.Set(sign.HeaderKeyID, sig.KeyID)
	req.Header.Set(sign.HeaderTimestamp, strconv.FormatInt(sig.Timestamp, 10))
	req.Header.Set(sign.HeaderSignature, sig.MAC)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	detail, _ := readBody(resp, 512)
	if resp.StatusCode < 300 {
		detail = nil
	}
	return resp.StatusCode, string(detail), nil
}
