package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file holds the msgpack primitives the frame codec is written with.
// The codec appends msgpack by hand instead of going through a generic
// encoder: the shapes are fixed, so hand-written appends are several times
// faster, allocate nothing, and let the decoder check every length against
// the bytes that remain before it allocates. The output is plain msgpack
// (the interop tests decode it with a general-purpose msgpack library), and
// the reader accepts every integer, string and container width msgpack
// allows, not only the smallest ones this encoder writes.

// msgpack format bytes used below.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpArray16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

// arrayHeaderLen is the size appendArrayHeader writes for n.
func arrayHeaderLen(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	default:
		return 5
	}
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpMap16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
	}
}

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpStr16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpBin16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, p...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return append(b, mpInt16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// reader decodes msgpack from a byte slice. Its error is sticky: after the
// first failure every read returns a zero value (so a length read after a
// failure is 0, never a garbage size to allocate) and err keeps the first
// failure. Callers check err at the end of each structure.
type reader struct {
	b   []byte
	off int
	err error
	// what names the structure being decoded and item the index of the
	// element within it (-1 for none), for error messages.
	what string
	item int
	// keys collects where the events' keys are, for decodeEvents.
	keys []keyRef
}

func newReader(p []byte, what string) reader {
	return reader{b: p, what: what, item: -1}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) fail(kind error, format string, args ...any) {
	if r.err != nil {
		return
	}
	prefix := r.what
	if r.item >= 0 {
		prefix = fmt.Sprintf("%s %d", r.what, r.item)
	}
	r.err = errorf(kind, prefix+": "+format, args...)
}

func (r *reader) truncated() {
	r.fail(ErrMalformed, "truncated at byte %d", r.off)
}

// next returns the next n bytes, or nil after recording truncation.
func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.remaining() {
		r.truncated()
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *reader) peek() (byte, bool) {
	if r.err != nil {
		return 0, false
	}
	if r.off >= len(r.b) {
		r.truncated()
		return 0, false
	}
	return r.b[r.off], true
}

func (r *reader) readByte() byte {
	p := r.next(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// length reads a big-endian length of size bytes (1, 2 or 4).
func (r *reader) length(size int) int {
	p := r.next(size)
	switch {
	case p == nil:
		return 0
	case size == 1:
		return int(p[0])
	case size == 2:
		return int(binary.BigEndian.Uint16(p))
	default:
		return int(binary.BigEndian.Uint32(p))
	}
}

// count reads an array (or, with isMap, map) header and checks the count
// against limit (ErrTooLarge) and against the bytes that remain, each
// element needing at least minSize bytes (ErrMalformed). Only then may a
// caller allocate for it. A nil reads as an empty container.
func (r *reader) count(field string, isMap bool, limit, minSize int) int {
	c, ok := r.peek()
	if !ok {
		return 0
	}
	var n int
	switch {
	case c == mpNil:
		r.off++
		return 0
	case !isMap && c&0xf0 == 0x90:
		r.off++
		n = int(c & 0x0f)
	case !isMap && c == mpArray16:
		r.off++
		n = r.length(2)
	case !isMap && c == mpArray32:
		r.off++
		n = r.length(4)
	case isMap && c&0xf0 == 0x80:
		r.off++
		n = int(c & 0x0f)
	case isMap && c == mpMap16:
		r.off++
		n = r.length(2)
	case isMap && c == mpMap32:
		r.off++
		n = r.length(4)
	default:
		kind := "array"
		if isMap {
			kind = "map"
		}
		r.fail(ErrMalformed, "%s: want %s, found format 0x%02x", field, kind, c)
		return 0
	}
	if r.err != nil {
		return 0
	}
	if n > limit {
		r.fail(ErrTooLarge, "%s: %d elements, limit %d", field, n, limit)
		return 0
	}
	if n > r.remaining()/minSize {
		r.fail(ErrMalformed, "%s: %d elements claimed, only %d bytes left", field, n, r.remaining())
		return 0
	}
	return n
}

func (r *reader) arrayLen(field string, limit, minSize int) int {
	return r.count(field, false, limit, minSize)
}

func (r *reader) mapLen(field string, limit, minSize int) int {
	return r.count(field, true, limit, minSize)
}

// uint reads any msgpack integer that is not negative. Positive fixints,
// most fields of most frames, take a short path.
func (r *reader) uint(field string) uint64 {
	if i := r.off; r.err == nil && i < len(r.b) && r.b[i] < 0x80 {
		r.off = i + 1
		return uint64(r.b[i])
	}
	return r.uintSlow(field)
}

func (r *reader) uintSlow(field string) uint64 {
	c, ok := r.peek()
	if !ok {
		return 0
	}
	switch {
	case c < 0x80:
		r.off++
		return uint64(c)
	case c == mpUint8:
		r.off++
		return uint64(r.length(1))
	case c == mpUint16:
		r.off++
		return uint64(r.length(2))
	case c == mpUint32:
		r.off++
		return uint64(uint32(r.length(4)))
	case c == mpUint64:
		r.off++
		if p := r.next(8); p != nil {
			return binary.BigEndian.Uint64(p)
		}
		return 0
	case c >= 0xe0 || (c >= mpInt8 && c <= mpInt64):
		v := r.intSlow(field)
		if v < 0 {
			r.fail(ErrMalformed, "%s: negative value %d", field, v)
			return 0
		}
		return uint64(v)
	}
	r.fail(ErrMalformed, "%s: want integer, found format 0x%02x", field, c)
	return 0
}

// int reads any msgpack integer that fits an int64; fixints take a short
// path.
func (r *reader) int(field string) int64 {
	if i := r.off; r.err == nil && i < len(r.b) && (r.b[i] < 0x80 || r.b[i] >= 0xe0) {
		r.off = i + 1
		return int64(int8(r.b[i]))
	}
	return r.intSlow(field)
}

func (r *reader) intSlow(field string) int64 {
	c, ok := r.peek()
	if !ok {
		return 0
	}
	switch {
	case c >= 0xe0:
		r.off++
		return int64(int8(c))
	case c == mpInt8:
		r.off++
		return int64(int8(r.readByte()))
	case c == mpInt16:
		r.off++
		if p := r.next(2); p != nil {
			return int64(int16(binary.BigEndian.Uint16(p)))
		}
		return 0
	case c == mpInt32:
		r.off++
		if p := r.next(4); p != nil {
			return int64(int32(binary.BigEndian.Uint32(p)))
		}
		return 0
	case c == mpInt64:
		r.off++
		if p := r.next(8); p != nil {
			return int64(binary.BigEndian.Uint64(p))
		}
		return 0
	case c < 0x80 || (c >= mpUint8 && c <= mpUint64):
		v := r.uintSlow(field)
		if v > math.MaxInt64 {
			r.fail(ErrMalformed, "%s: %d overflows int64", field, v)
			return 0
		}
		return int64(v)
	}
	r.fail(ErrMalformed, "%s: want integer, found format 0x%02x", field, c)
	return 0
}

// uint8 reads an integer that must fit a byte.
func (r *reader) uint8(field string) uint8 {
	v := r.uint(field)
	if v > math.MaxUint8 {
		r.fail(ErrMalformed, "%s: %d out of range", field, v)
		return 0
	}
	return uint8(v)
}

// str reads a string (nil reads as empty) of at most limit bytes. The
// result aliases the input: convert it before the input is reused.
func (r *reader) str(field string, limit int) []byte {
	c, ok := r.peek()
	if !ok {
		return nil
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		r.off++
		n = int(c & 0x1f)
	case c == mpStr8:
		r.off++
		n = r.length(1)
	case c == mpStr16:
		r.off++
		n = r.length(2)
	case c == mpStr32:
		r.off++
		n = r.length(4)
	case c == mpNil:
		r.off++
		return nil
	default:
		r.fail(ErrMalformed, "%s: want string, found format 0x%02x", field, c)
		return nil
	}
	if r.err == nil && n > limit {
		r.fail(ErrTooLarge, "%s: %d bytes, limit %d", field, n, limit)
		return nil
	}
	return r.next(n)
}

// stringInto reads a string into *dst, keeping the old value (and saving an
// allocation) when the bytes are the same: a receive loop decoding frames of
// the same origin over and over then allocates no names.
func (r *reader) stringInto(dst *string, field string, limit int) {
	p := r.str(field, limit)
	if r.err != nil {
		return
	}
	if string(p) != *dst {
		*dst = string(p)
	}
}

// bin reads a binary string of exactly size bytes. The result aliases the
// input.
func (r *reader) bin(field string, size int) []byte {
	c, ok := r.peek()
	if !ok {
		return nil
	}
	var n int
	switch c {
	case mpBin8:
		r.off++
		n = r.length(1)
	case mpBin16:
		r.off++
		n = r.length(2)
	case mpBin32:
		r.off++
		n = r.length(4)
	default:
		r.fail(ErrMalformed, "%s: want binary, found format 0x%02x", field, c)
		return nil
	}
	if r.err == nil && n != size {
		r.fail(ErrMalformed, "%s: %d bytes, want %d", field, n, size)
		return nil
	}
	return r.next(n)
}

func (r *reader) bool(field string) bool {
	switch c := r.readByte(); {
	case r.err != nil:
		return false
	case c == mpTrue:
		return true
	case c == mpFalse:
		return false
	default:
		r.fail(ErrMalformed, "%s: want bool, found format 0x%02x", field, c)
		return false
	}
}

// maxSkipDepth bounds the nesting of values skipped as unknown trailing
// fields, so a crafted frame cannot exhaust the stack.
const maxSkipDepth = 16

// skip passes over one value of any type: the fields a newer version
// appends to an array this version knows. Every element of a container
// takes at least one byte, so the work is bounded by the input size.
func (r *reader) skip(depth int) {
	if depth > maxSkipDepth {
		r.fail(ErrMalformed, "unknown field nested deeper than %d", maxSkipDepth)
		return
	}
	c := r.readByte()
	if r.err != nil {
		return
	}
	var elems int // values that follow inside a container
	switch {
	case c < 0x80 || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue:
		return
	case c&0xf0 == 0x80:
		elems = 2 * int(c&0x0f)
	case c&0xf0 == 0x90:
		elems = int(c & 0x0f)
	case c&0xe0 == 0xa0:
		r.next(int(c & 0x1f))
		return
	case c == mpBin8 || c == mpStr8:
		r.next(r.length(1))
		return
	case c == mpBin16 || c == mpStr16:
		r.next(r.length(2))
		return
	case c == mpBin32 || c == mpStr32:
		r.next(r.length(4))
		return
	case c == mpExt8:
		r.next(r.length(1) + 1)
		return
	case c == mpExt16:
		r.next(r.length(2) + 1)
		return
	case c == mpExt32:
		r.next(r.length(4) + 1)
		return
	case c == mpFloat32:
		r.next(4)
		return
	case c == mpFloat64:
		r.next(8)
		return
	case c >= mpUint8 && c <= mpInt64:
		r.next(1 << ((c - mpUint8) & 3))
		return
	case c >= mpFixExt1 && c <= mpFixExt16:
		r.next(1 + 1<<(c-mpFixExt1))
		return
	case c == mpArray16:
		elems = r.length(2)
	case c == mpArray32:
		elems = r.length(4)
	case c == mpMap16:
		elems = 2 * r.length(2)
	case c == mpMap32:
		elems = 2 * r.length(4)
	default: // 0xc1 is never used
		r.fail(ErrMalformed, "unknown field: invalid format 0x%02x", c)
		return
	}
	if elems > r.remaining() {
		r.fail(ErrMalformed, "unknown field: %d elements claimed, only %d bytes left", elems, r.remaining())
		return
	}
	for i := 0; i < elems && r.err == nil; i++ {
		r.skip(depth + 1)
	}
}

// skipFields skips the fields of an array beyond the known ones.
func (r *reader) skipFields(n, known int) {
	for i := known; i < n && r.err == nil; i++ {
		r.skip(0)
	}
}
