//go:build js && wasm

package worker

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"syscall/js"
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
func (h *Host) Consume(msgs []Message) []time.Duration {
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
			d := h.deliver(&m)
			for _, i := range p.msgs {
				out[i] = d
			}
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
// a refusal, the start of the origin's error body. It calls the runtime's
// fetch directly with the body as one Uint8Array (the net/http adapter would
// wrap it in a ReadableStream, which costs more than the whole post).
func (h *Host) ingest(body []byte) (int, string, error) {
	sig := sign.Sign(h.opt.IngestKey, time.Now(), body)
	headers := objectClass.New()
	headers.Set("Content-Type", shared.ContentTypeMsgpack)
	headers.Set(sign.HeaderKeyID, sig.KeyID)
	headers.Set(sign.HeaderTimestamp, strconv.FormatInt(sig.Timestamp, 10))
	headers.Set(sign.HeaderSignature, sig.MAC)
	init := objectClass.New()
	init.Set("method", http.MethodPost)
	init.Set("headers", headers)
	init.Set("body", toUint8Array(body))
	init.Set("redirect", "manual")
	res, err := await(js.Global().Call("fetch", h.opt.OriginURL+"/v1/ingest", init))
	if err != nil {
		return 0, "", err
	}
	status := res.Get("status").Int()
	if status < 300 {
		// The receipt is not needed, but reading it (a few bytes) lets the
		// connection be reused; cancelling the body would close it.
		_, _ = await(res.Call("arrayBuffer"))
		return status, "", nil
	}
	detail := ""
	if txt, err := await(res.Call("text")); err == nil && txt.Type() == js.TypeString {
		detail = txt.String()
		if len(detail) > 512 {
			detail = detail[:512]
		}
	}
	return status, detail, nil
}
