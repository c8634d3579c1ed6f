package shared

import "encoding/binary"

// BatchHeader is what PeekBatch reads from an encoded batch.
type BatchHeader struct {
	ID    BatchID
	Edge  string
	Votes int
}

// PeekBatch reads the id, edge and vote count at the start of a
// MarshalBatch encoding without decoding its votes, for log lines and
// metrics on paths that only forward the bytes (the Worker's queue
// producer and consumer, pollctl replay). It is written by hand, not with
// the msgpack decoder, because it runs once per batch on the edge's hot
// path and must not allocate the batch's votes. ok is false for bytes that
// do not start like a batch; a true ok does not mean the rest decodes.
func PeekBatch(data []byte) (h BatchHeader, ok bool) {
	// [version, bin(16) id, str edge, array votes]
	if len(data) < 4+len(h.ID)+1 || data[0] != 0x94 || data[1] > 0x7f || data[2] != 0xc4 || int(data[3]) != len(h.ID) {
		return h, false
	}
	copy(h.ID[:], data[4:])
	rest := data[4+len(h.ID):]
	var n int
	switch c := rest[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, rest = int(c&0x1f), rest[1:]
	case c == 0xd9 && len(rest) >= 2:
		n, rest = int(rest[1]), rest[2:]
	default:
		return h, false
	}
	if len(rest) < n+1 || n > MaxEdgeIDLen {
		return h, false
	}
	h.Edge, rest = string(rest[:n]), rest[n:]
	switch c := rest[0]; {
	case c >= 0x90 && c <= 0x9f:
		h.Votes = int(c & 0x0f)
	case c == 0xdc && len(rest) >= 3:
		h.Votes = int(binary.BigEndian.Uint16(rest[1:]))
	case c == 0xdd && len(rest) >= 5:
		h.Votes = int(binary.BigEndian.Uint32(rest[1:]))
	default:
		return h, false
	}
	return h, true
}
