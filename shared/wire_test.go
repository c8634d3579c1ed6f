package shared_test

import (
	"bytes"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/vmihailenco/msgpack/v5"
)

func mustVoter(tb testing.TB) shared.VoterID {
	tb.Helper()
	var v shared.VoterID
	if _, err := rand.Read(v[:]); err != nil {
		tb.Fatal(err)
	}
	return v
}

func sampleBatch(tb testing.TB, n int) *shared.Batch {
	tb.Helper()
	b := &shared.Batch{Edge: "colo-AMS-1"}
	copy(b.ID[:], "0123456789abcdef")
	for i := 0; i < n; i++ {
		poll := "poll-a"
		if i%3 == 0 {
			poll = "poll_B"
		}
		ch := []uint8{uint8(i % 4)}
		if i%5 == 0 {
			ch = []uint8{1, 3, 7}
		}
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: mustVoter(tb), Choices: ch, At: 1_700_000_000_000 + int64(i)})
	}
	return b
}

func samplePoll() *shared.Poll {
	return &shared.Poll{
		ID: "final-2026", Title: "Who wins? <b>&</b> \"quotes\"",
		Options: []shared.Option{{Label: "Ana"}, {Label: "Bo"}, {Label: "Ché ✓"}},
		Kind:    shared.KindMulti, MaxChoices: 2, State: shared.StateOpen,
		OpensAt:    time.UnixMilli(1_700_000_000_000).UTC(),
		ClosesAt:   time.UnixMilli(1_700_000_600_000).UTC(),
		Visibility: shared.VisibilityAfterClose, Version: 7,
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 500, shared.MaxBatchVotes} {
		b := sampleBatch(t, n)
		data, err := shared.MarshalBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		var got shared.Batch
		if err := shared.UnmarshalBatch(data, &got); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !reflect.DeepEqual(b, &got) {
			t.Fatalf("n=%d: round trip mismatch", n)
		}
		if len(data) > shared.MaxBatchBytes {
			t.Fatalf("n=%d: %d bytes exceeds MaxBatchBytes", n, len(data))
		}
	}
}

func TestBatchMaxSizeFitsLimit(t *testing.T) {
	// The worst case: MaxBatchVotes votes with the longest poll ids and most choices
	// of a single-choice ballot must fit MaxBatchBytes (one queue message).
	b := &shared.Batch{Edge: strings.Repeat("e", shared.MaxEdgeIDLen)}
	copy(b.ID[:], "0123456789abcdef")
	for i := 0; i < shared.MaxBatchVotes; i++ {
		b.Votes = append(b.Votes, shared.Vote{Poll: strings.Repeat("p", shared.MaxPollIDLen), Voter: mustVoter(t), Choices: []uint8{3, 4, 5}, At: 1 << 62})
	}
	data, err := shared.MarshalBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > shared.MaxBatchBytes {
		t.Fatalf("worst-case batch is %d bytes, limit %d", len(data), shared.MaxBatchBytes)
	}
}

func TestReceiptSnapshotPollRoundTrip(t *testing.T) {
	r := &shared.Receipt{Accepted: 490, Duplicate: 7, Replayed: true}
	r.Rejected[shared.ReasonIndex(shared.RejectClosed)] = 3
	copy(r.Batch[:], "fedcba9876543210")
	data, err := shared.MarshalReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	var r2 shared.Receipt
	if err := shared.UnmarshalReceipt(data, &r2); err != nil || r2 != *r {
		t.Fatalf("receipt: %v %+v", err, r2)
	}

	s := &shared.Snapshot{Poll: "p1", Version: 42, Counts: []uint64{1, 0, 1 << 40}, Total: 1<<40 + 2, Voters: 99, GeneratedAt: 1_700_000_000_123}
	data, err = shared.MarshalSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	var s2 shared.Snapshot
	if err := shared.UnmarshalSnapshot(data, &s2); err != nil || !reflect.DeepEqual(s, &s2) {
		t.Fatalf("snapshot: %v %+v", err, s2)
	}

	p := samplePoll()
	data, err = shared.MarshalPoll(p)
	if err != nil {
		t.Fatal(err)
	}
	var p2 shared.Poll
	if err := shared.UnmarshalPoll(data, &p2); err != nil || !reflect.DeepEqual(p, &p2) {
		t.Fatalf("poll: %v\n%+v\n%+v", err, p, p2)
	}
	for _, id := range []shared.Identity{shared.IdentityInvite, shared.IdentitySigned} {
		p := samplePoll()
		p.Identity = id
		if id == shared.IdentitySigned {
			p.JWTIssuer, p.JWTAudience = "https://app.example", "poll-app"
		}
		data, err := shared.MarshalPoll(p)
		if err != nil {
			t.Fatal(err)
		}
		var p2 shared.Poll
		if err := shared.UnmarshalPoll(data, &p2); err != nil || !reflect.DeepEqual(p, &p2) {
			t.Fatalf("poll %s: %v\n%+v\n%+v", id, err, p, p2)
		}
	}
}

// TestCustomCodecsViaLibrary checks that msgpack.Marshal/Unmarshal dispatch to
// the hand-written codecs, so generic callers produce the same bytes.
func TestCustomCodecsViaLibrary(t *testing.T) {
	b := sampleBatch(t, 3)
	want, _ := shared.MarshalBatch(b)
	got, err := msgpack.Marshal(b)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("msgpack.Marshal differs: %v", err)
	}
	var b2 shared.Batch
	if err := msgpack.Unmarshal(want, &b2); err != nil || !reflect.DeepEqual(b, &b2) {
		t.Fatalf("msgpack.Unmarshal: %v", err)
	}
}

func TestBatchDecodeRejects(t *testing.T) {
	good, _ := shared.MarshalBatch(sampleBatch(t, 3))
	enc := func(f func(e *msgpack.Encoder)) []byte {
		var buf bytes.Buffer
		f(msgpack.NewEncoder(&buf))
		return buf.Bytes()
	}
	id := []byte("0123456789abcdef")
	voter := make([]byte, 16)
	voter[0] = 1
	cases := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0xc0),
		"garbage":   []byte("hello, world"),
		"not array": enc(func(e *msgpack.Encoder) { e.EncodeMapLen(0) }),
		"version 2": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(2)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(0)
		}),
		"short id": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id[:8])
			e.EncodeString("e")
			e.EncodeArrayLen(0)
		}),
		"id as str": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeString(string(id))
			e.EncodeString("e")
			e.EncodeArrayLen(0)
		}),
		"no votes": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(0)
		}),
		"huge vote list": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1 << 30)
		}),
		"huge poll id": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(4)
			e.EncodeString(strings.Repeat("x", 65))
		}),
		"bad poll id": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(4)
			e.EncodeString("{tag}")
			e.EncodeBytes(voter)
			e.EncodeBytes([]byte{0})
			e.EncodeInt(1)
		}),
		"zero voter": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(4)
			e.EncodeString("p")
			e.EncodeBytes(make([]byte, 16))
			e.EncodeBytes([]byte{0})
			e.EncodeInt(1)
		}),
		"no choices": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(4)
			e.EncodeString("p")
			e.EncodeBytes(voter)
			e.EncodeBytes(nil)
			e.EncodeInt(1)
		}),
		"time as string": enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(4)
			e.EncodeUint(1)
			e.EncodeBytes(id)
			e.EncodeString("e")
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(4)
			e.EncodeString("p")
			e.EncodeBytes(voter)
			e.EncodeBytes([]byte{0})
			e.EncodeString("1")
		}),
		"oversized": make([]byte, shared.MaxBatchBytes+1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			var b shared.Batch
			err := shared.UnmarshalBatch(data, &b)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if c := shared.ErrorCode(err); c != shared.EINVALID && c != shared.ETOOLARGE {
				t.Fatalf("code %q (%v), want invalid or too_large", c, err)
			}
		})
	}
}

func TestDecodeRejectsUnknownVersions(t *testing.T) {
	// Flip the version byte (always the second byte: fixarray header, fixint 1).
	s, _ := shared.MarshalSnapshot(&shared.Snapshot{Poll: "p", Counts: []uint64{1, 2}})
	r, _ := shared.MarshalReceipt(&shared.Receipt{})
	p, _ := shared.MarshalPoll(samplePoll())
	for name, data := range map[string][]byte{"snapshot": s, "receipt": r, "poll": p} {
		bad := append([]byte{}, data...)
		if bad[1] != 1 {
			t.Fatalf("%s: version byte is %x", name, bad[1])
		}
		bad[1] = 9
		var err error
		switch name {
		case "snapshot":
			err = shared.UnmarshalSnapshot(bad, new(shared.Snapshot))
		case "receipt":
			err = shared.UnmarshalReceipt(bad, new(shared.Receipt))
		case "poll":
			err = shared.UnmarshalPoll(bad, new(shared.Poll))
		}
		if err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("%s: want version error, got %v", name, err)
		}
	}
}

func TestUnmarshalBatchReusesVotes(t *testing.T) {
	data, _ := shared.MarshalBatch(sampleBatch(t, 500))
	var b shared.Batch
	if err := shared.UnmarshalBatch(data, &b); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := shared.UnmarshalBatch(data, &b); err != nil {
			t.Fatal(err)
		}
	})
	// A decoded batch needs the choices slab and at most one string per
	// change of poll id; votes are reused.
	if allocs > 400 {
		t.Fatalf("UnmarshalBatch allocates %.0f times for 500 votes", allocs)
	}
}

func BenchmarkMarshalBatch500(b *testing.B) {
	batch := sampleBatch(b, 500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := shared.MarshalBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalBatch500(b *testing.B) {
	data, _ := shared.MarshalBatch(sampleBatch(b, 500))
	var batch shared.Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := shared.UnmarshalBatch(data, &batch); err != nil {
			b.Fatal(err)
		}
	}
}
