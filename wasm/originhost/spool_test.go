package originhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var spoolKey = sign.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// ingestOrigin is an origin's /v1/ingest that checks signatures, answers
// status and, like the real origin, applies a batch id once (a repeat gets
// the stored receipt). It records every batch it answered 200 to, repeats
// included, and how often each voter was applied.
type ingestOrigin struct {
	status   atomic.Int64 // 0 means 200
	verifier *sign.Verifier

	mu      sync.Mutex
	batches []shared.BatchID // every 200, replays included
	seen    map[shared.BatchID]bool
	voters  map[shared.VoterID]int // applications per voter
}

func (o *ingestOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := o.verifier.Verify(r.Header.Get(sign.HeaderKeyID), r.Header.Get(sign.HeaderTimestamp), r.Header.Get(sign.HeaderSignature), body); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if st := o.status.Load(); st != 0 && st != 200 {
		http.Error(w, "refused by the test", int(st))
		return
	}
	var b shared.Batch
	if err := shared.UnmarshalBatch(body, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.batches = append(o.batches, b.ID)
	replay := o.seen[b.ID]
	o.seen[b.ID] = true
	if !replay {
		for _, v := range b.Votes {
			o.voters[v.Voter]++
		}
	}
	o.mu.Unlock()
	rb, _ := shared.MarshalReceipt(&shared.Receipt{Batch: b.ID, Accepted: uint32(len(b.Votes)), Replayed: replay})
	w.Write(rb)
}

func (o *ingestOrigin) applied() (batches []shared.BatchID, voters map[shared.VoterID]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	voters = make(map[shared.VoterID]int, len(o.voters))
	for k, v := range o.voters {
		voters[k] = v
	}
	return append([]shared.BatchID(nil), o.batches...), voters
}

func newIngestOrigin(t *testing.T) (*ingestOrigin, string) {
	t.Helper()
	o := &ingestOrigin{verifier: sign.NewVerifier([]sign.Key{spoolKey}, 0, nil), voters: map[shared.VoterID]int{}, seen: map[shared.BatchID]bool{}}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return o, srv.URL
}

// spoolHost starts a Host on dir against url, logging into the returned buffer.
func spoolHost(t *testing.T, url, dir string, mod func(*Config)) (*Host, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cfg := Config{OriginURL: url, IngestKey: spoolKey, SpoolDir: dir, BatchDelay: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Close(ctx)
		if t.Failed() {
			t.Logf("host log:\n%s", logs.Tail(4000))
		}
	})
	return h, logs
}

// crash stops q as kill -9 would at a quiet moment: no more deliveries,
// the spool's files closed as they are (acks not synced, nothing deleted)
// and the directory lock released. Call it with no Submit in flight.
func (q *queue) crash() {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		close(q.in)
		q.mu.Unlock()
		<-q.gatherDone
		q.bmu.Lock()
		q.aborted = true
		q.bcond.Broadcast()
		q.bmu.Unlock()
		close(q.abort)
		q.cancel()
		q.senders.Wait()
		s := q.sp
		s.mu.Lock()
		for _, seg := range s.segs {
			seg.close()
		}
		s.mu.Unlock()
		if s.dead != nil {
			s.dead.Close()
		}
		s.unlock()
	})
}

func testVote(i int) *shared.Vote {
	return &shared.Vote{Poll: "p1", Voter: voterN(i), Choices: []uint8{uint8(i % 2)}, At: 1_700_000_000_000 + int64(i)}
}

func voterN(i int) shared.VoterID {
	var v shared.VoterID
	binary.LittleEndian.PutUint64(v[:], uint64(i)+1)
	v[15] = 0xee
	return v
}

// submitAll submits votes from..to-1 concurrently (so they share batches)
// and returns each one's error.
func submitAll(h *Host, from, to int) map[int]error {
	var mu sync.Mutex
	errs := map[int]error{}
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.Submit(context.Background(), testVote(i))
			mu.Lock()
			errs[i] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

func mustSubmit(t *testing.T, h *Host, from, to int) {
	t.Helper()
	for i, err := range submitAll(h, from, to) {
		if err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
}

// waitDelivered waits until h has nothing left to deliver.
func waitDelivered(t *testing.T, h *Host) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Queued != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool not delivered: %+v", h.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func segFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// spoolRecords writes n one-vote records to a fresh spool in dir and
// leaves it as a crash would. It returns the segment's path and the
// offsets where each record starts, plus the end.
func spoolRecords(t *testing.T, dir string, n int) (string, []int64) {
	t.Helper()
	s, recs, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler), nil)
	if err != nil || len(recs) != 0 {
		t.Fatalf("openSpool: %v, %d records", err, len(recs))
	}
	var scratch []byte
	var offs []int64
	for i := range n {
		payload, _ := shared.MarshalBatch(&shared.Batch{ID: shared.BatchID{byte(i + 1)}, Votes: []shared.Vote{*testVote(i)}})
		r, err := s.append(payload, 1, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, r.off)
	}
	seg := s.active
	offs = append(offs, seg.size)
	seg.close()
	s.unlock()
	return s.segName(seg.seq), offs
}

func reopen(t *testing.T, dir string) (*spool, []*record, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	s, recs, err := openSpool(dir, 1<<20, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s, recs, logs
}

func appendFile(t *testing.T, name string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestSpoolTornTail: whatever an append that never completed left at the
// end of a segment (part of a header, a header and part of its payload, a
// whole record with a bad checksum, zeros) is cut at start, and every
// record before it is recovered.
func TestSpoolTornTail(t *testing.T) {
	payload, _ := shared.MarshalBatch(&shared.Batch{ID: shared.BatchID{9}, Votes: []shared.Vote{*testVote(9)}})
	whole := appendRecord(nil, payload, 1)
	badCRC := bytes.Clone(whole)
	badCRC[len(badCRC)-1] ^= 0xff
	for name, tail := range map[string][]byte{
		"part of a header":         whole[:5],
		"header, part of payload":  whole[:recHeaderLen+3],
		"whole record, bad crc":    badCRC,
		"zeros":                    make([]byte, 4096),
		"length past end of file":  append(binary.LittleEndian.AppendUint32(nil, 1000), make([]byte, 20)...),
		"length over record limit": append(binary.LittleEndian.AppendUint32(nil, maxRecord+1), 0, 0, 0, 0, 0, 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			seg, offs := spoolRecords(t, dir, 3)
			appendFile(t, seg, tail)
			_, recs, logs := reopen(t, dir)
			if len(recs) != 3 {
				t.Fatalf("recovered %d records, want 3", len(recs))
			}
			for i, r := range recs {
				if r.off != offs[i] || r.votes != 1 {
					t.Fatalf("record %d at %d with %d votes, want at %d with 1", i, r.off, r.votes, offs[i])
				}
			}
			if got := fileSize(t, seg); got != offs[3] {
				t.Fatalf("segment is %d bytes after recovery, want %d (tail cut)", got, offs[3])
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "corrupt-*")); len(m) != 0 && name != "length over record limit" {
				t.Fatalf("a torn tail was treated as damage: %v", m)
			}
			if !strings.Contains(logs.String(), "torn tail") && !strings.Contains(logs.String(), "damaged") {
				t.Fatalf("cut not logged:\n%s", logs)
			}
		})
	}
}

// TestSpoolCRCMismatch: a record whose checksum fails with good records
// after it is damage, not a torn append: the rest of the segment is moved
// to a corrupt-* file (kept, logged) and the records before it are
// recovered; a record damaged after start is caught when it is read back.
func TestSpoolCRCMismatch(t *testing.T) {
	dir := t.TempDir()
	seg, offs := spoolRecords(t, dir, 3)
	data, _ := os.ReadFile(seg)
	data[offs[1]+recHeaderLen+2] ^= 0x40 // the second record's payload
	os.WriteFile(seg, data, 0o600)
	s, recs, logs := reopen(t, dir)
	if len(recs) != 1 || recs[0].off != offs[0] {
		t.Fatalf("recovered %d records, want only the first", len(recs))
	}
	moved, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("corrupt-%016d-%d", 1, offs[1])))
	if err != nil || !bytes.Equal(moved, data[offs[1]:]) {
		t.Fatalf("damaged bytes not kept (%v): %d bytes, want %d", err, len(moved), len(data)-int(offs[1]))
	}
	if got := fileSize(t, seg); got != offs[1] {
		t.Fatalf("segment is %d bytes, want %d", got, offs[1])
	}
	if !strings.Contains(logs.String(), "damaged record") {
		t.Fatalf("damage not logged:\n%s", logs)
	}
	if _, err := s.load(recs[0]); err != nil {
		t.Fatalf("load the good record: %v", err)
	}

	// Damage after start: the sender's read-back checks the CRC again.
	data, _ = os.ReadFile(seg)
	data[offs[0]+recHeaderLen+1] ^= 0x01
	os.WriteFile(seg, data, 0o600)
	if _, err := s.load(recs[0]); !errors.Is(err, errCorrupt) {
		t.Fatalf("load a record damaged on disk: %v, want errCorrupt", err)
	}
}

// TestSpoolRestartRedelivery: a host that dies with votes acknowledged and
// undelivered hands them, and only them, to the next start on the same
// spool, which delivers each batch with its original id; lost acks mean
// redelivery of the same batches, never of new ones. Delivered segments
// are deleted.
func TestSpoolRestartRedelivery(t *testing.T) {
	o, url := newIngestOrigin(t)
	dir := t.TempDir()
	small := func(c *Config) { c.SpoolSegmentBytes = 600 } // a few batches per segment
	h1, _ := spoolHost(t, url, dir, small)
	mustSubmit(t, h1, 0, 40)
	waitDelivered(t, h1)

	o.status.Store(503) // origin down: the next votes stay in the spool
	for i := 40; i < 100; i += 10 {
		mustSubmit(t, h1, i, i+10)
	}
	h1.q.crash()
	if st := h1.Stats(); st.Queued != 60 {
		t.Fatalf("before the crash: %+v, want 60 votes undelivered", st)
	}

	o.status.Store(200)
	h2, _ := spoolHost(t, url, dir, small)
	waitDelivered(t, h2)
	if st := h2.Stats(); st.Recovered != 60 || st.Votes != 60 {
		t.Fatalf("after restart: %+v, want 60 recovered and delivered", st)
	}
	_, voters := o.applied()
	for i := range 100 {
		if voters[voterN(i)] != 1 {
			t.Fatalf("voter %d applied %d times, want 1", i, voters[voterN(i)])
		}
	}
	if got := segFiles(t, dir, ".log"); len(got) > 1 { // only the active one may stay
		t.Fatalf("delivered segments not deleted: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := segFiles(t, dir, ""); len(got) != 0 {
		t.Fatalf("spool not empty after a full delivery and Close: %v", got)
	}

	// Acks lost (as a machine crash may lose unsynced ones): the same
	// batches come back, with the same ids, and nothing else.
	h3, _ := spoolHost(t, url, dir, nil)
	o.status.Store(503)
	mustSubmit(t, h3, 100, 110)
	before := h3.Stats().Retries
	deadline := time.Now().Add(5 * time.Second)
	for h3.Stats().Retries == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	o.status.Store(200)
	waitDelivered(t, h3)
	h3.q.crash()
	for _, a := range segFiles(t, dir, ".ack") {
		os.Truncate(a, 0)
	}
	n0, _ := o.applied()
	h4, _ := spoolHost(t, url, dir, nil)
	waitDelivered(t, h4)
	all, voters := o.applied()
	again := all[len(n0):]
	if len(again) == 0 || h4.Stats().Recovered != 10 {
		t.Fatalf("after losing the acks: %d batches redelivered, stats %+v; want the 10 votes again", len(again), h4.Stats())
	}
	seen := map[shared.BatchID]bool{}
	for _, id := range all[:len(n0)] {
		seen[id] = true
	}
	for _, id := range again {
		if !seen[id] {
			t.Fatalf("redelivered batch %s was never sent before: redelivery must keep the batch id", id)
		}
	}
	for i := range 110 {
		if voters[voterN(i)] != 1 {
			t.Fatalf("voter %d applied %d times, want 1", i, voters[voterN(i)])
		}
	}
}

// TestSpoolPoisonDeadLetter: a batch the origin refuses with a 4xx is moved
// to the dead-letter file (time, batch id, status, the origin's message,
// the signed body) and logged, never retried nor redelivered after a
// restart; a 429 is retried like a 5xx.
func TestSpoolPoisonDeadLetter(t *testing.T) {
	o, url := newIngestOrigin(t)
	dir := t.TempDir()
	h, logs := spoolHost(t, url, dir, nil)
	o.status.Store(429)
	mustSubmit(t, h, 0, 3)
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Retries < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := h.Stats(); st.Retries < 2 || st.Poison != 0 {
		t.Fatalf("429: %+v, want retries and no poison", st)
	}
	o.status.Store(400)
	waitDelivered(t, h)
	st := h.Stats()
	if st.Poison == 0 || st.PoisonVotes != 3 {
		t.Fatalf("stats %+v: want the 3 votes' batches as poison", st)
	}
	if !strings.Contains(logs.String(), "POISON BATCH") {
		t.Fatalf("poison not logged:\n%s", logs)
	}
	raw, err := os.ReadFile(filepath.Join(dir, deadLetter))
	if err != nil {
		t.Fatal(err)
	}
	votes := 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e deadLetterEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("dead-letter line %q: %v", line, err)
		}
		body, _ := base64.StdEncoding.DecodeString(e.BodyBase64)
		var b shared.Batch
		if err := shared.UnmarshalBatch(body, &b); err != nil || b.ID.String() != e.Batch || e.Status != 400 || !strings.Contains(e.OriginError, "refused by the test") || e.Time == "" {
			t.Fatalf("dead-letter entry %+v (batch %v)", e, err)
		}
		votes += len(b.Votes)
	}
	if votes != 3 {
		t.Fatalf("dead-letter file holds %d votes, want 3", votes)
	}
	h.q.crash()
	o.status.Store(200)
	h2, _ := spoolHost(t, url, dir, nil)
	if st := h2.Stats(); st.Recovered != 0 {
		t.Fatalf("a dead-lettered batch came back after restart: %+v", st)
	}
	if _, voters := o.applied(); len(voters) != 0 {
		t.Fatalf("poison votes reached the origin: %v", voters)
	}
}

// TestSpoolFull: while the spool is at its bound, Submit answers
// EUNAVAILABLE and the vote goes nowhere; once the origin takes the
// backlog, votes are accepted again.
func TestSpoolFull(t *testing.T) {
	o, url := newIngestOrigin(t)
	dir := t.TempDir()
	h, _ := spoolHost(t, url, dir, func(c *Config) { c.SpoolBytes = 1500; c.SpoolSegmentBytes = 300 })
	o.status.Store(503)
	accepted, refused := map[int]bool{}, map[int]bool{}
	for i := 0; len(refused) < 5; i++ {
		if i > 1000 {
			t.Fatalf("spool never full: %+v", h.Stats())
		}
		switch err := h.Submit(context.Background(), testVote(i)); shared.ErrorCode(err) {
		case "":
			accepted[i] = true
		case shared.EUNAVAILABLE:
			refused[i] = true
		default:
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	if st := h.Stats(); st.QueueFull != uint64(len(refused)) || st.SpoolBytes < 1500 {
		t.Fatalf("stats %+v: want %d refusals with the spool at its bound", st, len(refused))
	}
	o.status.Store(200)
	waitDelivered(t, h)
	if err := h.Submit(context.Background(), testVote(5000)); err != nil {
		t.Fatalf("after delivery: %v", err)
	}
	accepted[5000] = true
	waitDelivered(t, h)
	_, voters := o.applied()
	for i := range accepted {
		if voters[voterN(i)] != 1 {
			t.Fatalf("accepted vote %d applied %d times", i, voters[voterN(i)])
		}
	}
	for i := range refused {
		if voters[voterN(i)] != 0 {
			t.Fatalf("refused vote %d reached the origin", i)
		}
	}
}

// faultFile fails writes (after writing half, as a full disk would) or
// fsyncs, and optionally truncates, while its faults are on.
type faultFile struct {
	*os.File
	f *faults
}

type faults struct {
	write, sync, truncate atomic.Bool
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if f.f.write.Load() {
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, errors.New("injected write error")
	}
	return f.File.WriteAt(b, off)
}

func (f *faultFile) Sync() error {
	if f.f.sync.Load() {
		return errors.New("injected fsync error")
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(n int64) error {
	if f.f.truncate.Load() {
		return errors.New("injected truncate error")
	}
	return f.File.Truncate(n)
}

func injectFaults(t *testing.T) *faults {
	fl := &faults{}
	spoolOpenFile = func(name string, flag int, perm os.FileMode) (spoolFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(name, ".log") {
			return f, nil
		}
		return &faultFile{File: f, f: fl}, nil
	}
	t.Cleanup(func() { spoolOpenFile = osOpen })
	return fl
}

// TestSpoolWriteFailure: when a batch's write or fsync fails, every vote
// of the batch gets EUNAVAILABLE and the batch is never delivered, not
// now and not after a restart: the segment is cut back, or, if even that
// fails, the record is marked done. Later batches go to a new segment.
func TestSpoolWriteFailure(t *testing.T) {
	for _, c := range []struct {
		name                  string
		write, sync, truncate bool
	}{
		{"write fails", true, false, false},
		{"fsync fails", false, true, false},
		{"fsync and truncate fail", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fl := injectFaults(t)
			o, url := newIngestOrigin(t)
			dir := t.TempDir()
			h, _ := spoolHost(t, url, dir, func(c *Config) { c.BatchDelay = 20 * time.Millisecond })
			o.status.Store(503) // keep what is spooled in the spool
			mustSubmit(t, h, 0, 10)
			fl.write.Store(c.write)
			fl.sync.Store(c.sync)
			fl.truncate.Store(c.truncate)
			for i, err := range submitAll(h, 10, 30) {
				if shared.ErrorCode(err) != shared.EUNAVAILABLE {
					t.Fatalf("vote %d during the fault: %v, want EUNAVAILABLE", i, err)
				}
			}
			fl.write.Store(false)
			fl.sync.Store(false)
			fl.truncate.Store(false)
			mustSubmit(t, h, 30, 40)
			if st := h.Stats(); st.SpoolErrors == 0 || st.Queued != 20 || st.SpoolSegments != 2 {
				t.Fatalf("stats %+v: want spool errors, 20 votes spooled, in two segments", st)
			}
			h.q.crash()
			o.status.Store(200)
			h2, _ := spoolHost(t, url, dir, nil)
			waitDelivered(t, h2)
			if st := h2.Stats(); st.Recovered != 20 {
				t.Fatalf("after restart: %+v, want the 20 acknowledged votes recovered", st)
			}
			_, voters := o.applied()
			for i := range 40 {
				want := 1
				if i >= 10 && i < 30 {
					want = 0
				}
				if voters[voterN(i)] != want {
					t.Fatalf("voter %d applied %d times, want %d", i, voters[voterN(i)], want)
				}
			}
		})
	}
}

// BenchmarkSpoolAppend measures the spool's append+fsync of one batch
// record (the group commit's cost per batch) for batches of 1, 100 and
// 500 votes, and reports it per vote.
func BenchmarkSpoolAppend(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("votes=%d", n), func(b *testing.B) {
			s, _, err := openSpool(b.TempDir(), 16<<20, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			batch := shared.Batch{ID: shared.BatchID{1}, Edge: "bench"}
			for i := range n {
				batch.Votes = append(batch.Votes, *testVote(i))
			}
			payload, _ := shared.MarshalBatch(&batch)
			var scratch []byte
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := s.append(payload, n, &scratch)
				if err != nil {
					b.Fatal(err)
				}
				s.done(r) // keep the spool from growing without bound
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/vote")
		})
	}
}

// TestSubmittersCommitAtOnce: with Submitters known, a batch holding that
// many votes is committed without waiting out BatchDelay (an hour here).
func TestSubmittersCommitAtOnce(t *testing.T) {
	o, url := newIngestOrigin(t)
	h, _ := spoolHost(t, url, t.TempDir(), func(c *Config) { c.BatchDelay = time.Hour; c.Submitters = func() int { return 3 } })
	mustSubmit(t, h, 0, 3)
	mustSubmit(t, h, 3, 6)
	waitDelivered(t, h)
	if ids, voters := o.applied(); len(ids) != 2 || len(voters) != 6 {
		t.Fatalf("%d batches, %d voters; want 2 batches of 3", len(ids), len(voters))
	}
}
