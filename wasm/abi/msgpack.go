package abi

import (
	"encoding/binary"
	"math"

	"github.com/edgepoll/edgepoll/shared"
)

// The MessagePack subset the ABI uses, written by hand so neither side needs
// reflection: nil, non-negative and negative integers, str, bin and array.

// AppendArrayHeader appends a MessagePack array header for n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendUint appends a non-negative integer in its shortest form.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

// AppendInt appends a signed integer in its shortest form.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(b, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(b, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
}

// AppendString appends s as a MessagePack str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// AppendBytes appends p as a MessagePack bin.
func AppendBytes(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// Reader decodes the ABI's MessagePack subset from a byte slice, strictly:
// every length is checked against what remains and against the caller's
// bound, and errors are EINVALID. It never panics.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Reset makes r read b from the start and clears its error.
func (r *Reader) Reset(b []byte) { r.b, r.off, r.err = b, 0, nil }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Done returns the first error met, or an error if bytes remain unread.
func (r *Reader) Done(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.fail(what, "trailing bytes")
	}
	return r.err
}

func (r *Reader) fail(what, why string) {
	if r.err == nil {
		r.err = shared.Errorf(shared.EINVALID, "abi: %s: %s", what, why)
	}
}

func (r *Reader) need(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(what, "truncated")
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *Reader) byte1(what string) byte {
	p := r.need(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *Reader) be(n int, what string) uint64 {
	p := r.need(n, what)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

// ArrayHeader reads an array header and returns its length, which must be at most max.
func (r *Reader) ArrayHeader(max int, what string) int {
	c := r.byte1(what)
	var n uint64
	switch {
	case r.err != nil:
		return 0
	case c&0xf0 == 0x90:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n = r.be(2, what)
	case c == 0xdd:
		n = r.be(4, what)
	default:
		r.fail(what, "want an array")
		return 0
	}
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.fail(what, "too many elements")
		return 0
	}
	return int(n)
}

// Array reads an array header that must have exactly n elements.
func (r *Reader) Array(n int, what string) {
	if got := r.ArrayHeader(n, what); r.err == nil && got != n {
		r.fail(what, "wrong number of elements")
	}
}

// Int reads an integer of any MessagePack integer type.
func (r *Reader) Int(what string) int64 {
	c := r.byte1(what)
	switch {
	case r.err != nil:
		return 0
	case c < 0x80:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	}
	switch c {
	case 0xcc:
		return int64(r.be(1, what))
	case 0xcd:
		return int64(r.be(2, what))
	case 0xce:
		return int64(r.be(4, what))
	case 0xcf:
		v := r.be(8, what)
		if v > math.MaxInt64 {
			r.fail(what, "integer out of range")
			return 0
		}
		return int64(v)
	case 0xd0:
		return int64(int8(r.be(1, what)))
	case 0xd1:
		return int64(int16(r.be(2, what)))
	case 0xd2:
		return int64(int32(r.be(4, what)))
	case 0xd3:
		return int64(r.be(8, what))
	}
	r.fail(what, "want an integer")
	return 0
}

// Uint reads a non-negative integer no greater than max.
func (r *Reader) Uint(max uint64, what string) uint64 {
	v := r.Int(what)
	if r.err == nil && (v < 0 || uint64(v) > max) {
		r.fail(what, "integer out of range")
		return 0
	}
	return uint64(v)
}

// RawString reads a str of at most max bytes and returns it without copying;
// the result aliases the reader's buffer.
func (r *Reader) RawString(max int, what string) []byte {
	c := r.byte1(what)
	var n uint64
	switch {
	case r.err != nil:
		return nil
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n = r.be(1, what)
	case c == 0xda:
		n = r.be(2, what)
	case c == 0xdb:
		n = r.be(4, what)
	default:
		r.fail(what, "want a string")
		return nil
	}
	if r.err == nil && n > uint64(max) {
		r.fail(what, "string too long")
		return nil
	}
	return r.need(int(n), what)
}

// String reads a str of at most max bytes.
func (r *Reader) String(max int, what string) string { return string(r.RawString(max, what)) }

// Bytes reads a bin of at most max bytes without copying; the result aliases
// the reader's buffer. A nil value reads as an empty slice.
func (r *Reader) Bytes(max int, what string) []byte {
	c := r.byte1(what)
	var n uint64
	switch {
	case r.err != nil:
		return nil
	case c == 0xc0:
		return nil
	case c == 0xc4:
		n = r.be(1, what)
	case c == 0xc5:
		n = r.be(2, what)
	case c == 0xc6:
		n = r.be(4, what)
	default:
		r.fail(what, "want bytes")
		return nil
	}
	if r.err == nil && n > uint64(max) {
		r.fail(what, "too many bytes")
		return nil
	}
	return r.need(int(n), what)
}
