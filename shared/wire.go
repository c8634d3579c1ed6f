package shared

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// WireVersion is the newest version of the MessagePack wire format this
// package reads and writes. Each message is written in the oldest version
// that carries it (batches always in 2, receipts in 1, polls and snapshots
// of single and multi polls in 1); decoders take versions 1 and 2 (receipts
// 1). docs/WIRE.md documents both.
const WireVersion = 2

// receiptVersion is the receipt's layout version: unchanged since 1.
const receiptVersion = 1

// ContentTypeMsgpack is the media type of MessagePack bodies.
const ContentTypeMsgpack = "application/msgpack"

// Compile-time checks that the hot types carry hand-written codecs.
var (
	_ msgpack.CustomEncoder = (*Batch)(nil)
	_ msgpack.CustomDecoder = (*Batch)(nil)
	_ msgpack.CustomEncoder = (*Receipt)(nil)
	_ msgpack.CustomDecoder = (*Receipt)(nil)
	_ msgpack.CustomEncoder = (*Snapshot)(nil)
	_ msgpack.CustomDecoder = (*Snapshot)(nil)
	_ msgpack.CustomEncoder = (*Poll)(nil)
	_ msgpack.CustomDecoder = (*Poll)(nil)
)

// errWire wraps every decoding failure so callers see one EINVALID error.
func errWire(what string, err error) error {
	if err == nil {
		return Errorf(EINVALID, "malformed msgpack: %s", what)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Wrap(EINVALID, err, "malformed msgpack: truncated "+what)
	}
	return Wrap(EINVALID, err, "malformed msgpack: "+what)
}

func readArray(d *msgpack.Decoder, want int, what string) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return errWire(what, err)
	}
	if n != want {
		return Errorf(EINVALID, "malformed msgpack: %s must be an array of %d, got %d", what, want, n)
	}
	return nil
}

func readArrayMax(d *msgpack.Decoder, max int, what string) (int, error) {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return 0, errWire(what, err)
	}
	if n < 0 || n > max {
		return 0, Errorf(EINVALID, "malformed msgpack: %s must be an array of at most %d, got %d", what, max, n)
	}
	return n, nil
}

// readVersion reads a message's version and refuses one above max.
func readVersion(d *msgpack.Decoder, max uint64, what string) (uint64, error) {
	v, err := d.DecodeUint64()
	if err != nil {
		return 0, errWire(what+" version", err)
	}
	if v < 1 || v > max {
		return 0, Errorf(EINVALID, "unsupported %s wire version %d (want 1-%d)", what, v, max)
	}
	return v, nil
}

func isStrCode(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func isBinCode(c byte) bool {
	return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32
}

// readRaw reads the payload of a str (str=true) or bin of at most max bytes
// into scratch (grown as needed) and returns it.
func readRaw(d *msgpack.Decoder, str bool, max int, scratch []byte, what string) ([]byte, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, errWire(what, err)
	}
	if str && !isStrCode(c) || !str && !isBinCode(c) {
		kind := "bin"
		if str {
			kind = "str"
		}
		return nil, Errorf(EINVALID, "malformed msgpack: %s must be %s", what, kind)
	}
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, errWire(what, err)
	}
	if n < 0 || n > max {
		return nil, Errorf(EINVALID, "malformed msgpack: %s longer than %d bytes", what, max)
	}
	if cap(scratch) < n {
		scratch = make([]byte, n)
	}
	scratch = scratch[:n]
	if err := d.ReadFull(scratch); err != nil {
		return nil, errWire(what, err)
	}
	return scratch, nil
}

func readString(d *msgpack.Decoder, max int, what string) (string, error) {
	var buf [64]byte
	b, err := readRaw(d, true, max, buf[:0], what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func readFixedBin(d *msgpack.Decoder, dst []byte, what string) error {
	b, err := readRaw(d, false, len(dst), dst[:0], what)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return Errorf(EINVALID, "malformed msgpack: %s must be %d bytes", what, len(dst))
	}
	return nil
}

func readUint(d *msgpack.Decoder, max uint64, what string) (uint64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, errWire(what, err)
	}
	if msgpcode.IsFixedNum(c) && int8(c) < 0 || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64 {
		n, err := d.DecodeInt64()
		if err != nil {
			return 0, errWire(what, err)
		}
		if n < 0 || uint64(n) > max {
			return 0, Errorf(EINVALID, "malformed msgpack: %s out of range", what)
		}
		return uint64(n), nil
	}
	if !(msgpcode.IsFixedNum(c) || c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 || c == msgpcode.Uint64) {
		return 0, Errorf(EINVALID, "malformed msgpack: %s must be an integer", what)
	}
	n, err := d.DecodeUint64()
	if err != nil {
		return 0, errWire(what, err)
	}
	if n > max {
		return 0, Errorf(EINVALID, "malformed msgpack: %s out of range", what)
	}
	return n, nil
}

func readInt(d *msgpack.Decoder, what string) (int64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, errWire(what, err)
	}
	if c == msgpcode.Uint64 {
		n, err := d.DecodeUint64()
		if err != nil {
			return 0, errWire(what, err)
		}
		if n > 1<<63-1 {
			return 0, Errorf(EINVALID, "malformed msgpack: %s out of range", what)
		}
		return int64(n), nil
	}
	if !(msgpcode.IsFixedNum(c) || c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 ||
		c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64) {
		return 0, Errorf(EINVALID, "malformed msgpack: %s must be an integer", what)
	}
	n, err := d.DecodeInt64()
	if err != nil {
		return 0, errWire(what, err)
	}
	return n, nil
}

// EncodeMsgpack writes b in wire format v2: [2, id bin16, edge str, [vote...]].
func (b *Batch) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeArrayLen(4); err != nil {
		return err
	}
	if err := e.EncodeUint(WireVersion); err != nil {
		return err
	}
	if err := e.EncodeBytes(b.ID[:]); err != nil {
		return err
	}
	if err := e.EncodeString(b.Edge); err != nil {
		return err
	}
	if err := e.EncodeArrayLen(len(b.Votes)); err != nil {
		return err
	}
	for i := range b.Votes {
		if err := b.Votes[i].encode(e); err != nil {
			return err
		}
	}
	return nil
}

// encode writes v as [poll str, voter bin16, choices bin, at int, [word str...]].
func (v *Vote) encode(e *msgpack.Encoder) error {
	if err := e.EncodeArrayLen(5); err != nil {
		return err
	}
	if err := e.EncodeString(v.Poll); err != nil {
		return err
	}
	if err := e.EncodeBytes(v.Voter[:]); err != nil {
		return err
	}
	ch := v.Choices
	if ch == nil {
		ch = []uint8{} // a words vote: bin8(0), never nil (EncodeBytes(nil) writes nil)
	}
	if err := e.EncodeBytes(ch); err != nil {
		return err
	}
	if err := e.EncodeInt(v.At); err != nil {
		return err
	}
	if err := e.EncodeArrayLen(len(v.Words)); err != nil {
		return err
	}
	for _, w := range v.Words {
		if err := e.EncodeString(w); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads a v1 or v2 batch strictly: bounded lengths, exact
// shapes. It reuses b.Votes' capacity and interns repeated poll ids.
func (b *Batch) DecodeMsgpack(d *msgpack.Decoder) error {
	if err := readArray(d, 4, "batch"); err != nil {
		return err
	}
	ver, err := readVersion(d, 2, "batch")
	if err != nil {
		return err
	}
	voteLen := 4
	if ver == 2 {
		voteLen = 5
	}
	if err := readFixedBin(d, b.ID[:], "batch id"); err != nil {
		return err
	}
	edge, err := readString(d, MaxEdgeIDLen, "edge id")
	if err != nil {
		return err
	}
	b.Edge = edge
	return b.decodeVotes(d, voteLen)
}

// decodeVotes reads the votes array; each vote is voteLen elements (4 in
// v1, 5 with words in v2).
func (b *Batch) decodeVotes(d *msgpack.Decoder, voteLen int) error {
	n, err := readArrayMax(d, MaxBatchVotes, "votes")
	if err != nil {
		return err
	}
	if cap(b.Votes) >= n {
		b.Votes = b.Votes[:n]
	} else {
		b.Votes = make([]Vote, n)
	}
	var (
		lastPoll string
		idBuf    [MaxPollIDLen]byte
		chBuf    [MaxChoicesCap]byte
		slab     = make([]byte, 0, n*2)
		wBuf     [MaxWordBytes]byte
		words    []string          // the batch's words, one slab (words votes only)
		seen     map[string]string // interned words
	)
	for i := 0; i < n; i++ {
		v := &b.Votes[i]
		if err := readArray(d, voteLen, "vote"); err != nil {
			return err
		}
		id, err := readRaw(d, true, MaxPollIDLen, idBuf[:0], "poll id")
		if err != nil {
			return err
		}
		if string(id) != lastPoll { // no allocation for the comparison
			lastPoll = string(id)
		}
		v.Poll = lastPoll
		if err := readFixedBin(d, v.Voter[:], "voter id"); err != nil {
			return err
		}
		start := len(slab)
		ch, err := readRaw(d, false, MaxChoicesCap, chBuf[:0], "choices")
		if err != nil {
			return err
		}
		slab = append(slab, ch...)
		v.Choices = slab[start:len(slab):len(slab)]
		if v.At, err = readInt(d, "vote time"); err != nil {
			return err
		}
		v.Words = nil
		if voteLen == 5 {
			nw, err := readArrayMax(d, MaxWordsCap, "words")
			if err != nil {
				return err
			}
			if nw > 0 {
				if words == nil {
					words = make([]string, 0, n)
					seen = make(map[string]string, 64)
				}
				start := len(words)
				for range nw {
					w, err := readRaw(d, true, MaxWordBytes, wBuf[:0], "word")
					if err != nil {
						return err
					}
					// The words of a batch repeat: one string each.
					ws, ok := seen[string(w)] // no allocation for the lookup
					if !ok {
						ws = string(w)
						if len(seen) < 1024 {
							seen[ws] = ws
						}
					}
					words = append(words, ws)
				}
				v.Words = words[start:len(words):len(words)]
			}
		}
	}
	return nil
}

// EncodeMsgpack writes r as [1, batch bin16, accepted, duplicate, {reason: n}, replayed].
// Only non-zero reasons appear in the map.
func (r *Receipt) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeArrayLen(6); err != nil {
		return err
	}
	if err := e.EncodeUint(receiptVersion); err != nil {
		return err
	}
	if err := e.EncodeBytes(r.Batch[:]); err != nil {
		return err
	}
	if err := e.EncodeUint(uint64(r.Accepted)); err != nil {
		return err
	}
	if err := e.EncodeUint(uint64(r.Duplicate)); err != nil {
		return err
	}
	n := 0
	for _, c := range r.Rejected {
		if c > 0 {
			n++
		}
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	for i, c := range r.Rejected {
		if c == 0 {
			continue
		}
		if err := e.EncodeString(Reasons[i]); err != nil {
			return err
		}
		if err := e.EncodeUint(uint64(c)); err != nil {
			return err
		}
	}
	return e.EncodeBool(r.Replayed)
}

// DecodeMsgpack reads a v1 receipt; unknown reject reasons are refused.
func (r *Receipt) DecodeMsgpack(d *msgpack.Decoder) error {
	*r = Receipt{}
	if err := readArray(d, 6, "receipt"); err != nil {
		return err
	}
	if _, err := readVersion(d, receiptVersion, "receipt"); err != nil {
		return err
	}
	if err := readFixedBin(d, r.Batch[:], "batch id"); err != nil {
		return err
	}
	a, err := readUint(d, MaxBatchVotes, "accepted")
	if err != nil {
		return err
	}
	dup, err := readUint(d, MaxBatchVotes, "duplicate")
	if err != nil {
		return err
	}
	r.Accepted, r.Duplicate = uint32(a), uint32(dup)
	n, err := d.DecodeMapLen()
	if err != nil {
		return errWire("rejected", err)
	}
	if n < 0 || n > NumReasons {
		return Errorf(EINVALID, "malformed msgpack: rejected has %d reasons", n)
	}
	var buf [maxReasonLen]byte
	for i := 0; i < n; i++ {
		k, err := readRaw(d, true, maxReasonLen, buf[:0], "reason")
		if err != nil {
			return err
		}
		idx := ReasonIndex(string(k))
		if idx < 0 {
			return Errorf(EINVALID, "malformed msgpack: unknown reject reason %q", k)
		}
		c, err := readUint(d, MaxBatchVotes, "reject count")
		if err != nil {
			return err
		}
		r.Rejected[idx] = uint32(c)
	}
	if r.Replayed, err = d.DecodeBool(); err != nil {
		return errWire("replayed", err)
	}
	if r.Total() > MaxBatchVotes {
		return Errorf(EINVALID, "malformed msgpack: receipt counts exceed %d", MaxBatchVotes)
	}
	return nil
}

// EncodeMsgpack writes s as [1, poll, version, [count...], total, voters,
// generated_at], or for the kinds of version 2 as [2, …, kind, [kind's
// results]] (docs/WIRE.md).
func (s *Snapshot) EncodeMsgpack(e *msgpack.Encoder) error {
	n, ver := 7, uint64(1)
	if s.Kind != "" {
		n, ver = 9, 2
	}
	if err := e.EncodeArrayLen(n); err != nil {
		return err
	}
	if err := e.EncodeUint(ver); err != nil {
		return err
	}
	if err := e.EncodeString(s.Poll); err != nil {
		return err
	}
	if err := e.EncodeUint(s.Version); err != nil {
		return err
	}
	if err := encodeUints(e, s.Counts); err != nil {
		return err
	}
	if err := e.EncodeUint(s.Total); err != nil {
		return err
	}
	if err := e.EncodeUint(s.Voters); err != nil {
		return err
	}
	if err := e.EncodeInt(s.GeneratedAt); err != nil || ver == 1 {
		return err
	}
	if err := e.EncodeString(string(s.Kind)); err != nil {
		return err
	}
	switch s.Kind {
	case KindScale:
		if err := e.EncodeArrayLen(2); err != nil {
			return err
		}
		if err := e.EncodeInt(s.ScaleMin); err != nil {
			return err
		}
		return e.EncodeInt(s.ScaleSum)
	case KindRanked:
		return encodeUints(e, s.Borda)
	case KindWords:
		if err := e.EncodeArrayLen(4); err != nil {
			return err
		}
		if err := e.EncodeUint(s.Distinct); err != nil {
			return err
		}
		if err := e.EncodeBool(s.DistinctExact); err != nil {
			return err
		}
		if err := e.EncodeUint(s.CountError); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(s.Words)); err != nil {
			return err
		}
		for _, w := range s.Words {
			if err := e.EncodeArrayLen(2); err != nil {
				return err
			}
			if err := e.EncodeString(w.Word); err != nil {
				return err
			}
			if err := e.EncodeUint(w.Count); err != nil {
				return err
			}
		}
		return nil
	}
	return Errorf(EINVALID, "snapshot kind %q has no wire form", s.Kind)
}

func encodeUints(e *msgpack.Encoder, xs []uint64) error {
	if err := e.EncodeArrayLen(len(xs)); err != nil {
		return err
	}
	for _, c := range xs {
		if err := e.EncodeUint(c); err != nil {
			return err
		}
	}
	return nil
}

func readUints(d *msgpack.Decoder, max int, what string) ([]uint64, error) {
	n, err := readArrayMax(d, max, what)
	if err != nil {
		return nil, err
	}
	xs := make([]uint64, n)
	for i := range xs {
		if xs[i], err = readUint(d, 1<<63, what); err != nil {
			return nil, err
		}
	}
	return xs, nil
}

// DecodeMsgpack reads a v1 or v2 snapshot.
func (s *Snapshot) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return errWire("snapshot", err)
	}
	if n != 7 && n != 9 {
		return Errorf(EINVALID, "malformed msgpack: snapshot must be an array of 7 or 9, got %d", n)
	}
	ver, err := readVersion(d, 2, "snapshot")
	if err != nil {
		return err
	}
	if ver == 1 && n != 7 || ver == 2 && n != 9 {
		return Errorf(EINVALID, "malformed msgpack: a version %d snapshot must not be an array of %d", ver, n)
	}
	*s = Snapshot{}
	if s.Poll, err = readString(d, MaxPollIDLen, "poll id"); err != nil {
		return err
	}
	if s.Version, err = readUint(d, 1<<63, "version"); err != nil {
		return err
	}
	if s.Counts, err = readUints(d, MaxScaleSteps, "counts"); err != nil {
		return err
	}
	if s.Total, err = readUint(d, 1<<63, "total"); err != nil {
		return err
	}
	if s.Voters, err = readUint(d, 1<<63, "voters"); err != nil {
		return err
	}
	if s.GeneratedAt, err = readInt(d, "generated_at"); err != nil {
		return err
	}
	if ver == 1 {
		if len(s.Counts) > MaxOptions {
			return Errorf(EINVALID, "malformed msgpack: counts must be an array of at most %d", MaxOptions)
		}
		return nil
	}
	k, err := readString(d, maxStateStrLen, "kind")
	if err != nil {
		return err
	}
	s.Kind = Kind(k)
	switch s.Kind {
	case KindScale:
		if err := readArray(d, 2, "scale results"); err != nil {
			return err
		}
		if s.ScaleMin, err = readInt(d, "scale min"); err != nil {
			return err
		}
		if s.ScaleSum, err = readInt(d, "scale sum"); err != nil {
			return err
		}
	case KindRanked:
		if len(s.Counts) > MaxOptions {
			return Errorf(EINVALID, "malformed msgpack: counts must be an array of at most %d", MaxOptions)
		}
		if s.Borda, err = readUints(d, MaxOptions, "borda"); err != nil {
			return err
		}
	case KindWords:
		if err := readArray(d, 4, "words results"); err != nil {
			return err
		}
		if s.Distinct, err = readUint(d, 1<<63, "distinct"); err != nil {
			return err
		}
		if s.DistinctExact, err = d.DecodeBool(); err != nil {
			return errWire("distinct exact", err)
		}
		if s.CountError, err = readUint(d, 1<<63, "count error"); err != nil {
			return err
		}
		nw, err := readArrayMax(d, MaxSnapshotWords, "words")
		if err != nil {
			return err
		}
		s.Words = make([]WordCount, nw)
		for i := range s.Words {
			if err := readArray(d, 2, "word count"); err != nil {
				return err
			}
			if s.Words[i].Word, err = readString(d, MaxWordBytes, "word"); err != nil {
				return err
			}
			if s.Words[i].Count, err = readUint(d, 1<<63, "word count"); err != nil {
				return err
			}
		}
	default:
		return Errorf(EINVALID, "malformed msgpack: snapshot kind %q is not a version 2 kind", k)
	}
	return nil
}

// UnixMilli returns t in Unix milliseconds, or 0 for the zero time (the
// wire format's "unset").
func UnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromUnixMilli is the inverse of UnixMilli: 0 is the zero time, anything
// else a UTC time.
func FromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// EncodeMsgpack writes p as [1, id, title, [label...], kind, max_choices,
// state, opens_at_ms, closes_at_ms, visibility, version] (times 0 when
// unset), followed by identity, jwt_issuer, jwt_audience when the identity
// is not open: an open poll keeps the 11-element form edges that predate
// identity modes read.
//
// Polls of the kinds of version 2 (scale, ranked, words) are written as
// [2, …the 14 elements above…, scale, max_words] (docs/WIRE.md).
func (p *Poll) EncodeMsgpack(e *msgpack.Encoder) error {
	n, ver := 11, uint64(1)
	if p.IdentityMode() != IdentityOpen {
		n = 14
	}
	if p.Kind.Extended() {
		n, ver = 16, 2
	}
	if err := e.EncodeArrayLen(n); err != nil {
		return err
	}
	if err := e.EncodeUint(ver); err != nil {
		return err
	}
	if err := e.EncodeString(p.ID); err != nil {
		return err
	}
	if err := e.EncodeString(p.Title); err != nil {
		return err
	}
	if err := e.EncodeArrayLen(len(p.Options)); err != nil {
		return err
	}
	for _, o := range p.Options {
		if err := e.EncodeString(o.Label); err != nil {
			return err
		}
	}
	if err := e.EncodeString(string(p.Kind)); err != nil {
		return err
	}
	if err := e.EncodeUint(uint64(p.MaxChoices)); err != nil {
		return err
	}
	if err := e.EncodeString(string(p.State)); err != nil {
		return err
	}
	if err := e.EncodeInt(UnixMilli(p.OpensAt)); err != nil {
		return err
	}
	if err := e.EncodeInt(UnixMilli(p.ClosesAt)); err != nil {
		return err
	}
	if err := e.EncodeString(string(p.Visibility)); err != nil {
		return err
	}
	if err := e.EncodeUint(p.Version); err != nil || n == 11 {
		return err
	}
	for _, s := range []string{string(p.IdentityMode()), p.JWTIssuer, p.JWTAudience} {
		if err := e.EncodeString(s); err != nil {
			return err
		}
	}
	if n == 14 {
		return nil
	}
	if p.Scale == nil {
		if err := e.EncodeArrayLen(0); err != nil {
			return err
		}
	} else {
		if err := e.EncodeArrayLen(4); err != nil {
			return err
		}
		if err := e.EncodeInt(int64(p.Scale.Min)); err != nil {
			return err
		}
		if err := e.EncodeInt(int64(p.Scale.Max)); err != nil {
			return err
		}
		if err := e.EncodeString(p.Scale.MinLabel); err != nil {
			return err
		}
		if err := e.EncodeString(p.Scale.MaxLabel); err != nil {
			return err
		}
	}
	return e.EncodeUint(uint64(p.MaxWords))
}

// DecodeMsgpack reads a v1 poll (11 elements, or 14 with its identity) or
// a v2 poll (16 elements) and validates it.
func (p *Poll) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return errWire("poll", err)
	}
	if n != 11 && n != 14 && n != 16 {
		return Errorf(EINVALID, "malformed msgpack: poll must be an array of 11, 14 or 16, got %d", n)
	}
	ver, err := readVersion(d, 2, "poll")
	if err != nil {
		return err
	}
	if ver == 1 && n == 16 || ver == 2 && n != 16 {
		return Errorf(EINVALID, "malformed msgpack: a version %d poll must not be an array of %d", ver, n)
	}
	if p.ID, err = readString(d, MaxPollIDLen, "poll id"); err != nil {
		return err
	}
	if p.Title, err = readString(d, MaxTitleLen, "title"); err != nil {
		return err
	}
	nopts, err := readArrayMax(d, MaxOptions, "options")
	if err != nil {
		return err
	}
	p.Options = make([]Option, nopts)
	for i := range p.Options {
		if p.Options[i].Label, err = readString(d, MaxLabelLen, "label"); err != nil {
			return err
		}
	}
	s, err := readString(d, maxStateStrLen, "kind")
	if err != nil {
		return err
	}
	p.Kind = Kind(s)
	mc, err := readUint(d, MaxOptions, "max_choices")
	if err != nil {
		return err
	}
	p.MaxChoices = int(mc)
	if s, err = readString(d, maxStateStrLen, "state"); err != nil {
		return err
	}
	p.State = State(s)
	o, err := readInt(d, "opens_at")
	if err != nil {
		return err
	}
	c, err := readInt(d, "closes_at")
	if err != nil {
		return err
	}
	p.OpensAt, p.ClosesAt = FromUnixMilli(o), FromUnixMilli(c)
	if s, err = readString(d, maxStateStrLen, "visibility"); err != nil {
		return err
	}
	p.Visibility = Visibility(s)
	if p.Version, err = readUint(d, 1<<63, "version"); err != nil {
		return err
	}
	p.Identity, p.JWTIssuer, p.JWTAudience = "", "", ""
	p.Scale, p.MaxWords = nil, 0
	if n >= 14 {
		if s, err = readString(d, maxStateStrLen, "identity"); err != nil {
			return err
		}
		p.Identity = Identity(s)
		if p.JWTIssuer, err = readString(d, MaxJWTClaimLen, "jwt_issuer"); err != nil {
			return err
		}
		if p.JWTAudience, err = readString(d, MaxJWTClaimLen, "jwt_audience"); err != nil {
			return err
		}
		if p.Identity == IdentityOpen {
			p.Identity = "" // as an open poll decodes from the 11-element form
		}
	}
	if n == 16 {
		if err := p.decodeV2(d); err != nil {
			return err
		}
		if !p.Kind.Extended() {
			return Errorf(EINVALID, "malformed msgpack: a %q poll is sent in version 1", p.Kind)
		}
	} else if p.Kind.Extended() {
		return Errorf(EINVALID, "malformed msgpack: a %q poll needs version 2", p.Kind)
	}
	if len(p.Options) == 0 {
		p.Options = nil
	}
	return p.Validate()
}

// decodeV2 reads a v2 poll's scale and max_words.
func (p *Poll) decodeV2(d *msgpack.Decoder) error {
	ns, err := d.DecodeArrayLen()
	if err != nil {
		return errWire("scale", err)
	}
	switch ns {
	case 0:
	case 4:
		lo, err := readInt(d, "scale min")
		if err != nil {
			return err
		}
		hi, err := readInt(d, "scale max")
		if err != nil {
			return err
		}
		if lo < -MaxScaleAbs || lo > MaxScaleAbs || hi < -MaxScaleAbs || hi > MaxScaleAbs {
			return Errorf(EINVALID, "malformed msgpack: scale out of range")
		}
		sc := &Scale{Min: int(lo), Max: int(hi)}
		if sc.MinLabel, err = readString(d, MaxLabelLen, "scale min label"); err != nil {
			return err
		}
		if sc.MaxLabel, err = readString(d, MaxLabelLen, "scale max label"); err != nil {
			return err
		}
		p.Scale = sc
	default:
		return Errorf(EINVALID, "malformed msgpack: scale must be an array of 0 or 4, got %d", ns)
	}
	mw, err := readUint(d, MaxWordsCap, "max_words")
	if err != nil {
		return err
	}
	p.MaxWords = int(mw)
	return nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// marshal runs enc on a pooled encoder and returns a copy of the bytes.
func marshal(v msgpack.CustomEncoder) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	e := msgpack.GetEncoder()
	e.Reset(buf)
	err := v.EncodeMsgpack(e)
	msgpack.PutEncoder(e)
	var out []byte
	if err == nil {
		out = append([]byte(nil), buf.Bytes()...)
	}
	if buf.Cap() <= 1<<20 {
		bufPool.Put(buf)
	}
	return out, err
}

// unmarshal decodes data into v strictly: errors are EINVALID and trailing
// bytes are refused.
func unmarshal(data []byte, v msgpack.CustomDecoder, what string) error {
	r := bytes.NewReader(data)
	d := msgpack.GetDecoder()
	d.Reset(r)
	err := v.DecodeMsgpack(d)
	msgpack.PutDecoder(d)
	if err != nil {
		if ErrorCode(err) != EINVALID {
			return errWire(what, err)
		}
		return err
	}
	if r.Len() != 0 {
		return Errorf(EINVALID, "malformed msgpack: %d trailing bytes after %s", r.Len(), what)
	}
	return nil
}

// MarshalBatch encodes b in wire format v2.
func MarshalBatch(b *Batch) ([]byte, error) { return marshal(b) }

// UnmarshalBatch decodes a v1 or v2 batch and validates it. Errors are EINVALID.
func UnmarshalBatch(data []byte, b *Batch) error {
	if len(data) > MaxBatchBytes {
		return Errorf(ETOOLARGE, "batch larger than %d bytes", MaxBatchBytes)
	}
	if err := unmarshal(data, b, "batch"); err != nil {
		return err
	}
	return b.Validate()
}

// MarshalReceipt encodes r in wire format (receipts are version 1).
func MarshalReceipt(r *Receipt) ([]byte, error) { return marshal(r) }

// UnmarshalReceipt decodes a version 1 receipt.
func UnmarshalReceipt(data []byte, r *Receipt) error { return unmarshal(data, r, "receipt") }

// MarshalSnapshot encodes s in wire format v1 (single, multi) or v2.
func MarshalSnapshot(s *Snapshot) ([]byte, error) { return marshal(s) }

// UnmarshalSnapshot decodes a v1 or v2 snapshot.
func UnmarshalSnapshot(data []byte, s *Snapshot) error { return unmarshal(data, s, "snapshot") }

// MarshalPoll encodes p in wire format v1 (single, multi) or v2.
func MarshalPoll(p *Poll) ([]byte, error) { return marshal(p) }

// UnmarshalPoll decodes a v1 or v2 poll and validates it.
func UnmarshalPoll(data []byte, p *Poll) error { return unmarshal(data, p, "poll") }
