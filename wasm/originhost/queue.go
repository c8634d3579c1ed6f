package originhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// queue is the vote hand-off: a bounded channel of votes, a gatherer that
// group-commits them into batches (BatchVotes, or whatever arrived within
// BatchDelay of a batch's first vote) and senders that deliver each batch to
// the origin, retrying with exponential backoff on 5xx and network errors.
// A batch the origin refuses with a 4xx is poison: it is logged in full and
// counted, never retried.
type queue struct {
	cfg    Config
	ingest string
	log    *slog.Logger

	mu        sync.RWMutex // guards closed against put racing close
	closed    bool
	votes     chan shared.Vote
	batches   chan *shared.Batch
	abort     chan struct{} // closed when Close gives up waiting
	abortOnce sync.Once
	done      sync.WaitGroup

	submitted, full, sent, sentVotes, retries, poison, poisonVotes, undelivered atomic.Uint64
	receiptMu                                                                   sync.Mutex
	receipt                                                                     shared.Receipt
}

func newQueue(cfg Config, ingest string) *queue {
	q := &queue{
		cfg:     cfg,
		ingest:  ingest,
		log:     cfg.Logger,
		votes:   make(chan shared.Vote, cfg.QueueVotes),
		batches: make(chan *shared.Batch),
		abort:   make(chan struct{}),
	}
	q.done.Add(1 + cfg.Senders)
	go q.gather()
	for range cfg.Senders {
		go q.send()
	}
	return q
}

var (
	errQueueFull   = shared.Errorf(shared.EUNAVAILABLE, "the vote queue is full, try again")
	errQueueClosed = shared.Errorf(shared.EUNAVAILABLE, "the edge is shutting down")
)

func (q *queue) put(v *shared.Vote) error {
	vote := *v
	vote.Choices = append([]uint8(nil), v.Choices...)
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errQueueClosed
	}
	select {
	case q.votes <- vote:
		q.submitted.Add(1)
		return nil
	default:
		q.full.Add(1)
		return errQueueFull
	}
}

// gather groups queued votes into batches until the vote channel closes.
func (q *queue) gather() {
	defer q.done.Done()
	defer close(q.batches)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		v, ok := <-q.votes
		if !ok {
			return
		}
		b := &shared.Batch{Edge: q.cfg.EdgeID, Votes: make([]shared.Vote, 1, q.cfg.BatchVotes)}
		b.Votes[0] = v
		timer.Reset(q.cfg.BatchDelay)
	fill:
		for len(b.Votes) < q.cfg.BatchVotes {
			select {
			case v, ok := <-q.votes:
				if !ok {
					break fill
				}
				b.Votes = append(b.Votes, v)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		rand.Read(b.ID[:])
		q.batches <- b
	}
}

// send delivers batches until the batch channel closes.
func (q *queue) send() {
	defer q.done.Done()
	for b := range q.batches {
		q.deliver(b)
	}
}

// deliver sends b until the origin applies it or refuses it as poison, or
// Close gives up.
func (q *queue) deliver(b *shared.Batch) {
	body, err := shared.MarshalBatch(b)
	if err != nil {
		q.poisoned(b, nil, 0, err.Error())
		return
	}
	backoff := q.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		status, msg, err := q.post(body)
		switch {
		case err == nil:
			q.sent.Add(1)
			q.sentVotes.Add(uint64(len(b.Votes)))
			return
		case status >= 400 && status < 500:
			q.poisoned(b, body, status, msg)
			return
		}
		q.retries.Add(1)
		q.log.Warn("ingest failed; retrying", "batch", b.ID.String(), "votes", len(b.Votes), "attempt", attempt, "status", status, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-q.abort:
			q.undelivered.Add(uint64(len(b.Votes)))
			q.log.Error("shutdown deadline: batch NOT delivered", "batch", b.ID.String(), "votes", len(b.Votes), "body_base64", base64.StdEncoding.EncodeToString(body))
			return
		}
		backoff = min(2*backoff, q.cfg.MaxBackoff)
	}
}

// post sends one signed batch. It returns the status and the origin's
// message for an HTTP answer other than 200, and an error for anything but
// an applied batch.
func (q *queue) post(body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.ingest, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	sig := sign.Sign(q.cfg.IngestKey, q.cfg.Now(), body)
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	req.Header.Set(sign.HeaderKeyID, sig.KeyID)
	req.Header.Set(sign.HeaderTimestamp, strconv.FormatInt(sig.Timestamp, 10))
	req.Header.Set(sign.HeaderSignature, sig.MAC)
	resp, err := q.cfg.Client.Do(req)
	if err != nil {
		return 0, "", shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(rb), shared.Errorf(shared.EUNAVAILABLE, "origin answered %d", resp.StatusCode)
	}
	if err != nil {
		return 0, "", shared.Wrap(shared.EUNAVAILABLE, err, "origin receipt cut short")
	}
	var r shared.Receipt
	if err := shared.UnmarshalReceipt(rb, &r); err != nil {
		// Applied (200) but unreadable: not worth a resend, which would only replay.
		q.log.Error("ingest: unreadable receipt", "err", err)
		return http.StatusOK, "", nil
	}
	q.receiptMu.Lock()
	q.receipt.Add(&r)
	q.receiptMu.Unlock()
	return http.StatusOK, "", nil
}

func (q *queue) poisoned(b *shared.Batch, body []byte, status int, msg string) {
	q.poison.Add(1)
	q.poisonVotes.Add(uint64(len(b.Votes)))
	q.log.Error("POISON BATCH: the origin refused it; it will not be retried",
		"batch", b.ID.String(), "votes", len(b.Votes), "status", status, "origin_error", msg,
		"body_base64", base64.StdEncoding.EncodeToString(body))
}

func (q *queue) stats() Stats {
	q.receiptMu.Lock()
	r := q.receipt
	q.receiptMu.Unlock()
	return Stats{
		Queued:      len(q.votes),
		Submitted:   q.submitted.Load(),
		QueueFull:   q.full.Load(),
		Batches:     q.sent.Load(),
		Votes:       q.sentVotes.Load(),
		Retries:     q.retries.Load(),
		Poison:      q.poison.Load(),
		PoisonVotes: q.poisonVotes.Load(),
		Undelivered: q.undelivered.Load(),
		Receipt:     r,
	}
}

func (q *queue) close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.votes)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.done.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	q.abortOnce.Do(func() { close(q.abort) })
	// Count what never left the queue; the senders count their own batches.
	n := 0
	for range q.votes {
		n++
	}
	<-done
	if n > 0 {
		q.undelivered.Add(uint64(n))
		q.log.Error("shutdown deadline: votes NOT delivered", "votes", n)
	}
	return shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "vote queue not drained: "+strconv.FormatUint(q.undelivered.Load(), 10)+" votes undelivered")
}
