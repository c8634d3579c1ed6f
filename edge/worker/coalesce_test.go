package worker

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

// batchMsg encodes a batch of n votes (voters numbered from first) as a message.
func batchMsg(t testing.TB, id byte, first, n int) Message {
	t.Helper()
	b := shared.Batch{ID: shared.BatchID{id}, Edge: "e"}
	for i := 0; i < n; i++ {
		v := shared.Vote{Poll: "p1", Choices: []uint8{uint8(i % 3)}, At: 1_700_000_000_000}
		v.Voter[0], v.Voter[1], v.Voter[15] = byte((first+i)>>8), byte(first+i), 1
		b.Votes = append(b.Votes, v)
	}
	body, err := shared.MarshalBatch(&b)
	if err != nil {
		t.Fatal(err)
	}
	return Message{ID: fmt.Sprint("m", id), Body: body, Attempts: 1}
}

func TestCoalesceMergesBatchesOfADelivery(t *testing.T) {
	msgs := []Message{batchMsg(t, 1, 0, 3), batchMsg(t, 2, 3, 2), batchMsg(t, 3, 5, 4)}
	posts := coalesce(msgs)
	if len(posts) != 1 || len(posts[0].msgs) != 3 {
		t.Fatalf("want one post for all 3 messages, got %+v", posts)
	}
	var m shared.Batch
	if err := shared.UnmarshalBatch(posts[0].body, &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("merged batch invalid: %v", err)
	}
	if len(m.Votes) != 9 {
		t.Fatalf("merged %d votes, want 9", len(m.Votes))
	}
	for i, v := range m.Votes {
		if int(v.Voter[1]) != i {
			t.Fatalf("vote %d is voter %d: order not kept", i, v.Voter[1])
		}
	}
	// Same messages again (a redelivery): same id, so the origin sees a replay.
	again := coalesce(msgs)
	var m2 shared.Batch
	if err := shared.UnmarshalBatch(again[0].body, &m2); err != nil {
		t.Fatal(err)
	}
	if m2.ID != m.ID {
		t.Fatal("a redelivery of the same messages got a different merged id")
	}
	for _, in := range msgs {
		var b shared.Batch
		_ = shared.UnmarshalBatch(in.Body, &b)
		if b.ID == m.ID {
			t.Fatal("merged id equals an input id")
		}
	}
}

func TestCoalesceKeepsLonersAndBadBodiesAsSent(t *testing.T) {
	bad := Message{ID: "bad", Body: []byte{0xc1, 0x00}, Attempts: 2}
	notBytes := Message{ID: "nil", Attempts: 1}
	one := batchMsg(t, 7, 0, 2)
	posts := coalesce([]Message{one, bad, notBytes})
	if len(posts) != 3 {
		t.Fatalf("want 3 posts, got %d", len(posts))
	}
	if !bytes.Equal(posts[0].body, one.Body) || posts[0].msgs[0] != 0 {
		t.Fatal("a lone batch must be posted exactly as it came")
	}
	if !bytes.Equal(posts[1].body, bad.Body) || posts[1].msgs[0] != 1 {
		t.Fatal("an undecodable body must be posted as it came, on its own")
	}
	if posts[2].body != nil || posts[2].msgs[0] != 2 {
		t.Fatal("a non-bytes message must stay on its own with a nil body")
	}
}

func TestCoalesceRespectsBatchLimits(t *testing.T) {
	var msgs []Message
	per := 300
	for i := 0; i < 7; i++ { // 2100 votes: needs 3 posts of ≤ 1000
		msgs = append(msgs, batchMsg(t, byte(i+1), i*per, per))
	}
	posts := coalesce(msgs)
	if len(posts) != 3 {
		t.Fatalf("want 3 posts within MaxBatchVotes, got %d", len(posts))
	}
	seen := map[int]bool{}
	total := 0
	for _, p := range posts {
		var b shared.Batch
		if err := shared.UnmarshalBatch(p.body, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Votes) > shared.MaxBatchVotes || len(p.body) > shared.MaxBatchBytes {
			t.Fatalf("post of %d votes, %d bytes exceeds the limits", len(b.Votes), len(p.body))
		}
		total += len(b.Votes)
		for _, i := range p.msgs {
			if seen[i] {
				t.Fatalf("message %d in two posts", i)
			}
			seen[i] = true
		}
	}
	if total != 7*per || len(seen) != 7 {
		t.Fatalf("posted %d votes for %d messages, want %d for 7", total, len(seen), 7*per)
	}
}

func BenchmarkCoalesce100(b *testing.B) {
	var msgs []Message
	for i := 0; i < 100; i++ {
		msgs = append(msgs, batchMsg(b, byte(i+1), i*5, 5))
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(coalesce(msgs)) != 1 {
			b.Fatal("want one post")
		}
	}
}
