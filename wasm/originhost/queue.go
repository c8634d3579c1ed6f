package originhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// queue is the vote hand-off, backed by the spool (spool.go).
//
// A gatherer group-commits submitted votes into batches (BatchVotes, or
// whatever arrived within BatchDelay of a batch's first vote), appends each
// batch to the spool as one record and fsyncs it, and only then answers
// every Submit of the batch: success once the batch is on disk, EUNAVAILABLE
// (the voter's 503) if the write or fsync failed, in which case the record
// is cut back and never delivered. Senders deliver spooled records to the
// origin's /v1/ingest, oldest first, signing each send afresh and keeping
// the batch id (so the origin answers a redelivery from its replay keys);
// they retry 5xx and network errors with exponential backoff until shutdown,
// and move records the origin refuses with a 4xx to the dead-letter file.
//
// Why a spool, not a wait for the origin's receipt: a 503 must mean "not
// recorded", so that retrying is safe. A voter kept waiting on the origin
// cannot be told that honestly when the origin's answer is lost (a timeout,
// a dropped connection, a crash of the harness mid-request): the batch may
// or may not have been applied. The local fsync has no such third outcome,
// and the spool rides out origin outages as the Worker's Queue does.
type queue struct {
	cfg     Config
	ingest  string
	log     *slog.Logger
	sp      *spool
	tempDir bool // the spool is a temporary directory of our own

	mu         sync.RWMutex // guards closed against put racing close
	closed     bool
	in         chan submission
	gatherDone chan struct{}

	bmu      sync.Mutex // guards backlog, head, draining, aborted
	bcond    *sync.Cond
	backlog  []*record
	head     int
	draining bool // the gatherer has stopped: senders stop when the backlog is empty
	aborted  bool
	abort    chan struct{}
	cancel   context.CancelFunc
	sendCtx  context.Context
	senders  sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	pendingVotes atomic.Int64 // votes submitted and not yet delivered, refused or dead-lettered
	memBytes     atomic.Int64 // payload bytes held in memory for the senders

	submitted, full, spoolErrors, sent, sentVotes, retries, poison, poisonVotes, undelivered, recovered atomic.Uint64
	receiptMu                                                                                           sync.Mutex
	receipt                                                                                             shared.Receipt
}

// submission is one vote waiting for its batch's fsync.
type submission struct {
	vote shared.Vote
	done chan error
}

// maxMemPayload bounds the payload bytes kept in memory for the senders;
// beyond it they read records back from the spool.
const maxMemPayload = 32 << 20

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

func newQueue(cfg Config, ingest string) (*queue, error) {
	dir, temp := cfg.SpoolDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "edgepoll-spool-")
		if err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, "create a temporary spool directory")
		}
		dir, temp = d, true
	}
	sp, recs, err := openSpool(dir, cfg.SpoolSegmentBytes, cfg.Logger, nil)
	if err != nil {
		if temp {
			os.RemoveAll(dir)
		}
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "open the vote spool")
	}
	q := &queue{
		cfg:        cfg,
		ingest:     ingest,
		log:        cfg.Logger,
		sp:         sp,
		tempDir:    temp,
		in:         make(chan submission, cfg.BatchVotes),
		gatherDone: make(chan struct{}),
		abort:      make(chan struct{}),
		backlog:    recs,
	}
	q.bcond = sync.NewCond(&q.bmu)
	q.sendCtx, q.cancel = context.WithCancel(context.Background())
	votes := 0
	for _, r := range recs {
		votes += r.votes
	}
	q.pendingVotes.Store(int64(votes))
	q.recovered.Store(uint64(votes))
	if len(recs) > 0 {
		q.log.Info("spool: delivering votes left from an earlier run", "dir", dir, "votes", votes, "batches", len(recs), "segments", sp.segments())
	}
	go q.gather()
	q.senders.Add(cfg.Senders)
	for range cfg.Senders {
		go q.send()
	}
	return q, nil
}

var (
	errSpoolFull   = shared.Errorf(shared.EUNAVAILABLE, "the vote spool is full, try again")
	errQueueClosed = shared.Errorf(shared.EUNAVAILABLE, "the edge is shutting down")
)

// put submits v and returns once its batch is in the spool (fsynced), or
// with EUNAVAILABLE when the spool is full, closed or could not record the
// batch. It does not give up early: an answer that came before the fsync's
// outcome could not say whether the vote was recorded.
func (q *queue) put(v *shared.Vote) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return errQueueClosed
	}
	if q.pendingVotes.Load() >= int64(q.cfg.QueueVotes) || q.sp.used.Load() >= q.cfg.SpoolBytes {
		q.mu.RUnlock()
		q.full.Add(1)
		return errSpoolFull
	}
	q.pendingVotes.Add(1)
	s := submission{vote: *v, done: donePool.Get().(chan error)}
	s.vote.Choices = append([]uint8(nil), v.Choices...)
	q.in <- s
	q.mu.RUnlock()
	err := <-s.done
	donePool.Put(s.done)
	if err == nil {
		q.submitted.Add(1)
	}
	return err
}

// gather groups submitted votes into batches and spools them until the
// submission channel closes.
func (q *queue) gather() {
	defer func() {
		q.bmu.Lock()
		q.draining = true
		q.bcond.Broadcast()
		q.bmu.Unlock()
		close(q.gatherDone)
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var recheck <-chan time.Time // asks Submitters again while a batch waits
	if q.cfg.Submitters != nil {
		t := time.NewTicker(max(q.cfg.BatchDelay/16, 50*time.Microsecond))
		defer t.Stop()
		recheck = t.C
	}
	limit := func() int {
		if q.cfg.Submitters != nil {
			if n := q.cfg.Submitters(); n > 0 {
				return min(n, q.cfg.BatchVotes)
			}
		}
		return q.cfg.BatchVotes
	}
	var (
		scratch []byte
		waiters []chan error
		votes   = make([]shared.Vote, 0, q.cfg.BatchVotes)
	)
	for {
		s, ok := <-q.in
		if !ok {
			return
		}
		votes, waiters = append(votes[:0], s.vote), append(waiters[:0], s.done)
		timer.Reset(q.cfg.BatchDelay)
	fill:
		for len(votes) < limit() {
			select {
			case s, ok := <-q.in:
				if !ok {
					break fill
				}
				votes, waiters = append(votes, s.vote), append(waiters, s.done)
			case <-timer.C:
				break fill
			case <-recheck:
			}
		}
		timer.Stop()
		err := q.commit(votes, &scratch)
		if err != nil {
			q.spoolErrors.Add(1)
			q.pendingVotes.Add(-int64(len(votes)))
			q.log.Error("spool: batch NOT recorded; its voters are answered 503", "votes", len(votes), "err", err)
			err = shared.Wrap(shared.EUNAVAILABLE, err, "could not record the vote, try again")
		}
		for _, w := range waiters {
			w <- err
		}
		clear(votes) // drop references to the votes' strings and slices
	}
}

// commit spools votes as one batch and queues the record for the senders.
func (q *queue) commit(votes []shared.Vote, scratch *[]byte) error {
	b := shared.Batch{Edge: q.cfg.EdgeID, Votes: votes}
	rand.Read(b.ID[:])
	payload, err := shared.MarshalBatch(&b)
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	r, err := q.sp.append(payload, len(votes), scratch)
	if err != nil {
		return err
	}
	r.id = b.ID
	if q.memBytes.Add(int64(len(payload))) <= maxMemPayload {
		r.payload = payload
	} else {
		q.memBytes.Add(-int64(len(payload)))
	}
	q.bmu.Lock()
	q.backlog = append(q.backlog, r)
	q.bcond.Signal()
	q.bmu.Unlock()
	return nil
}

// next takes the oldest record to deliver, or returns nil when the
// senders must stop.
func (q *queue) next() *record {
	q.bmu.Lock()
	defer q.bmu.Unlock()
	for q.head == len(q.backlog) && !q.draining && !q.aborted {
		q.bcond.Wait()
	}
	if q.aborted || q.head == len(q.backlog) {
		return nil
	}
	r := q.backlog[q.head]
	q.backlog[q.head] = nil
	q.head++
	if q.head > 1024 && q.head*2 > len(q.backlog) {
		q.backlog = append(q.backlog[:0], q.backlog[q.head:]...)
		q.head = 0
	}
	return r
}

// send delivers records until there are none left at shutdown, or
// shutdown gives up.
func (q *queue) send() {
	defer q.senders.Done()
	for {
		r := q.next()
		if r == nil {
			return
		}
		if !q.deliver(r) {
			return // aborted: r stays in the spool for the next start
		}
	}
}

// finish releases r's memory and marks it done in the spool.
func (q *queue) finish(r *record) {
	if r.payload != nil {
		q.memBytes.Add(-int64(len(r.payload)))
		r.payload = nil
	}
	q.sp.done(r)
	q.pendingVotes.Add(-int64(r.votes))
}

// deliver sends r until the origin applies it or refuses it (then it goes
// to the dead-letter file). It returns false when shutdown gave up first.
func (q *queue) deliver(r *record) bool {
	backoff := q.cfg.MinBackoff
	wait := func(attempt int, msg string, attrs ...any) bool {
		q.retries.Add(1)
		q.log.Warn(msg, append(attrs, "record", r.String(), "batch", r.id.String(), "votes", r.votes, "attempt", attempt, "backoff", backoff)...)
		select {
		case <-time.After(backoff):
		case <-q.abort:
			return false
		}
		backoff = min(2*backoff, q.cfg.MaxBackoff)
		return true
	}
	for attempt := 1; ; attempt++ {
		body, err := q.sp.load(r)
		if errors.Is(err, errCorrupt) {
			if qerr := q.sp.quarantineRecord(r); qerr != nil {
				q.log.Error("spool: could not keep a damaged record's bytes", "record", r.String(), "err", qerr)
			}
			q.poisoned(r, nil, 0, err.Error())
			return true
		}
		if err != nil {
			if !wait(attempt, "spool: read failed; retrying", "err", err) {
				return false
			}
			continue
		}
		status, msg, err := q.post(body)
		switch {
		case err == nil:
			q.sent.Add(1)
			q.sentVotes.Add(uint64(r.votes))
			q.log.Debug("batch delivered", "batch", r.id.String(), "votes", r.votes, "attempt", attempt)
			q.finish(r)
			return true
		case refused(status):
			if derr := q.sp.deadLetter(r, body, status, msg, q.cfg.Now()); derr != nil {
				if !wait(attempt, "spool: the origin refused a batch and the dead-letter file could not take it; retrying", "status", status, "err", derr) {
					return false
				}
				continue
			}
			q.poisoned(r, body, status, msg)
			return true
		case q.sendCtx.Err() != nil:
			return false
		}
		if !wait(attempt, "ingest failed; retrying", "status", status, "err", err) {
			return false
		}
	}
}

// refused reports whether an ingest status means the origin will never
// take this batch (malformed, too large: the dead-letter file keeps it).
// 401 is not among them: a refused signature means this edge's clock or
// INGEST_KEY is wrong, which an operator fixes, and the spool must still
// hold the batch then. 408 and 429 are transient too.
func refused(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

// post sends one signed batch. It returns the status and the origin's
// message for an HTTP answer other than 200, and an error for anything but
// an applied batch.
func (q *queue) post(body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(q.sendCtx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.ingest, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("build ingest request: %w", err)
	}
	sig := sign.Sign(q.cfg.IngestKey, q.cfg.Now(), body)
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	sig.SetHeaders(req.Header.Set)
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

// poisoned logs and counts a record that will not be delivered (it is in
// the dead-letter file, or damaged on disk) and marks it done.
func (q *queue) poisoned(r *record, body []byte, status int, msg string) {
	q.poison.Add(1)
	q.poisonVotes.Add(uint64(r.votes))
	if body == nil {
		q.log.Error("spool: DAMAGED RECORD: it cannot be delivered", "record", r.String(), "votes", r.votes, "err", msg)
	} else {
		q.log.Error("POISON BATCH: the origin refused it; moved to the dead-letter file, not retried",
			"record", r.String(), "batch", r.id.String(), "votes", r.votes, "status", status, "origin_error", msg,
			"dead_letter", q.sp.dir+string(os.PathSeparator)+deadLetter)
	}
	q.finish(r)
}

func (q *queue) stats() Stats {
	q.receiptMu.Lock()
	r := q.receipt
	q.receiptMu.Unlock()
	return Stats{
		Queued:        int(q.pendingVotes.Load()),
		Submitted:     q.submitted.Load(),
		QueueFull:     q.full.Load(),
		SpoolErrors:   q.spoolErrors.Load(),
		SpoolBytes:    q.sp.used.Load(),
		SpoolSegments: q.sp.segments(),
		Recovered:     q.recovered.Load(),
		Batches:       q.sent.Load(),
		Votes:         q.sentVotes.Load(),
		Retries:       q.retries.Load(),
		Poison:        q.poison.Load(),
		PoisonVotes:   q.poisonVotes.Load(),
		Undelivered:   q.undelivered.Load(),
		Receipt:       r,
	}
}

// close stops taking votes, answers every vote already submitted (their
// batches are spooled), then lets the senders deliver the spool until it is
// empty or ctx ends. What is left stays in the spool for the next start.
func (q *queue) close(ctx context.Context) error {
	q.closeOnce.Do(func() { q.closeErr = q.shutdown(ctx) })
	return q.closeErr
}

func (q *queue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	close(q.in)
	q.mu.Unlock()
	<-q.gatherDone // every waiting Submit gets its batch's outcome first

	done := make(chan struct{})
	go func() { q.senders.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		q.bmu.Lock()
		q.aborted = true
		q.bcond.Broadcast()
		q.bmu.Unlock()
		close(q.abort)
		q.cancel()
		<-done
	}
	q.cancel()
	left := q.pendingVotes.Load()
	q.sp.close()
	if left == 0 {
		if q.tempDir && spoolDirEmptyOfVotes(q.sp.dir) {
			os.RemoveAll(q.sp.dir)
		}
		return nil
	}
	q.undelivered.Store(uint64(left))
	q.log.Warn("shutdown: votes left in the spool; the next start on this spool delivers them", "votes", left, "spool", q.sp.dir)
	return shared.Errorf(shared.EUNAVAILABLE, "%d votes not yet delivered, left in the spool at %s", left, q.sp.dir)
}

// spoolDirEmptyOfVotes reports whether dir holds no segment (a temporary
// spool may then go; its dead letters were logged in full).
func spoolDirEmptyOfVotes(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if n := e.Name(); len(n) > 4 && n[:4] == "seg-" {
			return false
		}
	}
	return true
}
