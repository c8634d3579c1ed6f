package worker

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// Message is one queue message as the consumer sees it.
type Message struct {
	ID       string
	Body     []byte // nil when the body was not bytes
	Attempts int    // 1 on the first delivery
}

// Consumer handles one queue delivery and returns, per message, 0 to ack it
// or the delay before it is delivered again. ctx belongs to the delivery's
// event: I/O made with it runs in that event's context.
type Consumer func(ctx context.Context, msgs []Message) []time.Duration

// posting is one ingest post the queue consumer makes: the batch to send and
// the messages whose fate it decides.
type posting struct {
	body   []byte             // shared.MarshalBatch bytes
	msgs   []int              // indexes into the delivery
	head   shared.BatchHeader // the posted batch's id, edge and votes (zero when body is not a batch)
	merged []shared.BatchID   // the ids of the batches merged into it, when more than one
}

// coalesce plans the ingest posts for one queue delivery. Each message holds
// one group-committed batch; posting each on its own would cost one origin
// round trip per few votes, so consecutive decodable batches are merged into
// as few batches as shared.MaxBatchVotes and shared.MaxBatchBytes allow.
//
// A merged batch's id is derived from the ids it merges (in order), so a
// redelivery of the same messages is recognised by the origin as a replay;
// a different grouping on redelivery is harmless too, because the origin
// counts each voter once per poll whatever batch carries the vote. A message
// that is not a decodable batch, or a batch that is alone in its group, is
// posted exactly as it came, so the origin judges it as sent.
func coalesce(msgs []Message) []posting {
	var out []posting
	var cur []int
	var batches []shared.Batch // decoded, parallel to cur
	votes, size := 0, 0
	flush := func() {
		switch len(cur) {
		case 0:
			return
		case 1:
			out = append(out, alone(msgs[cur[0]].Body, cur[0]))
		default:
			body, head, err := merge(batches)
			if err != nil {
				// Cannot happen for batches that decoded within the limits;
				// should it, post them one by one.
				for _, i := range cur {
					out = append(out, alone(msgs[i].Body, i))
				}
				break
			}
			ids := make([]shared.BatchID, len(batches))
			for i := range batches {
				ids[i] = batches[i].ID
			}
			out = append(out, posting{body: body, msgs: cur, head: head, merged: ids})
		}
		cur, batches, votes, size = nil, nil, 0, 0
	}
	for i := range msgs {
		var b shared.Batch
		if msgs[i].Body == nil || shared.UnmarshalBatch(msgs[i].Body, &b) != nil {
			flush()
			out = append(out, alone(msgs[i].Body, i))
			continue
		}
		if len(cur) > 0 && (votes+len(b.Votes) > shared.MaxBatchVotes || size+len(msgs[i].Body) > shared.MaxBatchBytes) {
			flush()
		}
		cur = append(cur, i)
		batches = append(batches, b)
		votes += len(b.Votes)
		size += len(msgs[i].Body)
	}
	flush()
	return out
}

// alone is the posting of message i's body exactly as it came.
func alone(body []byte, i int) posting {
	head, _ := shared.PeekBatch(body)
	return posting{body: body, msgs: []int{i}, head: head}
}

// merge encodes batches as one batch. Its encoding is never longer than the
// sum of theirs (one header instead of several).
func merge(batches []shared.Batch) ([]byte, shared.BatchHeader, error) {
	h := sha256.New()
	m := shared.Batch{Edge: batches[0].Edge}
	for i := range batches {
		h.Write(batches[i].ID[:])
		m.Votes = append(m.Votes, batches[i].Votes...)
	}
	copy(m.ID[:], h.Sum(nil))
	body, err := shared.MarshalBatch(&m)
	if err != nil {
		return nil, shared.BatchHeader{}, shared.Wrap(shared.EINTERNAL, err, "merging vote batches")
	}
	return body, shared.BatchHeader{ID: m.ID, Edge: m.Edge, Votes: len(m.Votes)}, nil
}
