package wire

import (
	"encoding/binary"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// FrameType is the kind of a frame body, its first byte (without the
// compression bit).
type FrameType uint8

//go:generate go run golang.org/x/tools/cmd/stringer@v0.52.0 -type=FrameType -output=frametype_string.go

// Frame types. ONLY APPEND TO THIS LIST: the values are on the wire.
const (
	// FrameEvents carries a batch of events numbered by one node.
	FrameEvents FrameType = iota + 1
	// FrameAcks carries acknowledgements of one origin's events.
	FrameAcks
	// FrameRepairRequest asks an origin to resend some of its events.
	FrameRepairRequest
	// FrameUnavailable answers that an origin no longer holds some events.
	FrameUnavailable
	// FrameDigest announces the highest sequence number an origin assigned.
	FrameDigest
	// FramePresence announces a bridge node on a broker.
	FramePresence
	// FrameCredit grants an origin flow-control credit.
	FrameCredit
	// FrameAnnounce announces a node on a multicast group, for discovery.
	FrameAnnounce

	maxFrameType = FrameAnnounce
)

// compressedBit marks a body whose msgpack payload is lz4-compressed.
const compressedBit = 0x80

// compressMin is the payload size under which compression is not tried:
// below it lz4 cannot win back the bytes of its length prefix often enough
// to pay for the attempt.
const compressMin = 128

// PeekType returns the type of a frame body without decoding it. An empty
// body or an unknown type is ErrMalformed (a newer peer's frame type is
// unknown to this build: drop it and count it).
func PeekType(body []byte) (FrameType, error) {
	if len(body) == 0 {
		return 0, errorf(ErrMalformed, "empty body")
	}
	t := FrameType(body[0] &^ compressedBit)
	if t == 0 || t > maxFrameType {
		return t, errorf(ErrMalformed, "unknown frame type %d", t)
	}
	return t, nil
}

// bufPool recycles the scratch buffers of compression and decompression, so
// that a steady stream of frames allocates none. Decoded values never alias
// a pooled buffer: strings are copied out of it.
var bufPool = sync.Pool{New: func() any { return new(scratch) }}

// scratch is a pooled working set: a byte buffer and an lz4 compressor
// (whose 64 KiB hash table is the reason to pool it). It belongs to one
// goroutine between get and put.
type scratch struct {
	buf []byte // a payload being encoded, or a decompressed payload
	out []byte // compression output
	lz  lz4.Compressor
}

func getScratch() *scratch { return bufPool.Get().(*scratch) }

// put returns s to the pool unless its buffer grew past the largest body,
// which only a caller's oversize input could cause.
func (s *scratch) put() {
	if cap(s.buf) > MaxBodySize || cap(s.out) > lz4.CompressBlockBound(MaxBodySize) {
		return
	}
	bufPool.Put(s)
}

// grow returns s.buf resized to n bytes, reallocating when too small.
func (s *scratch) grow(n int) []byte {
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	return s.buf
}

// appendBody appends a body of type t holding payload to dst, compressed
// with lz4 when compress is set and that makes it smaller. lz is the
// compressor to use and tmp a scratch buffer for its output (both owned by
// the caller); tmp is returned, possibly grown.
func appendBody(dst []byte, t FrameType, payload []byte, compress bool, lz *lz4.Compressor, tmp []byte) ([]byte, []byte) {
	if compress && len(payload) >= compressMin {
		bound := lz4.CompressBlockBound(len(payload))
		if cap(tmp) < bound {
			tmp = make([]byte, bound)
		}
		tmp = tmp[:bound]
		n, err := lz.CompressBlock(payload, tmp)
		// The compressed form carries a uvarint length: use it only when the
		// total is smaller than the plain payload.
		if err == nil && n > 0 && n+uvarintLen(uint64(len(payload))) < len(payload) {
			dst = append(dst, byte(t)|compressedBit)
			dst = binary.AppendUvarint(dst, uint64(len(payload)))
			return append(dst, tmp[:n]...), tmp
		}
	}
	dst = append(dst, byte(t))
	return append(dst, payload...), tmp
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// encodeBody appends a body of type t to dst; enc appends the msgpack
// payload. Without compression the payload is written straight into dst;
// with it, into a pooled buffer first. A payload over MaxBodySize is
// ErrTooLarge and leaves dst as it was.
func encodeBody(dst []byte, t FrameType, compress bool, enc func([]byte) []byte) ([]byte, error) {
	if !compress {
		start := len(dst)
		dst = enc(append(dst, byte(t)))
		if n := len(dst) - start - 1; n > MaxBodySize {
			return dst[:start], errorf(ErrTooLarge, "%v: body of %d bytes, limit %d", t, n, MaxBodySize)
		}
		return dst, nil
	}
	s := getScratch()
	defer s.put()
	s.buf = enc(s.buf[:0])
	if n := len(s.buf); n > MaxBodySize {
		return dst, errorf(ErrTooLarge, "%v: body of %d bytes, limit %d", t, n, MaxBodySize)
	}
	dst, s.out = appendBody(dst, t, s.buf, true, &s.lz, s.out)
	return dst, nil
}

// payload checks the body's type and returns its msgpack payload,
// decompressing it into a pooled buffer when needed. The caller must call
// release (when not nil) once it no longer reads the payload.
func payload(body []byte, want FrameType) (p []byte, release *scratch, err error) {
	if len(body) > MaxBodySize+1 {
		return nil, nil, errorf(ErrTooLarge, "body of %d bytes, limit %d", len(body), MaxBodySize+1)
	}
	t, err := PeekType(body)
	if err != nil {
		return nil, nil, err
	}
	if t != want {
		return nil, nil, errorf(ErrMalformed, "frame type %v, want %v", t, want)
	}
	if body[0]&compressedBit == 0 {
		return body[1:], nil, nil
	}
	n, k := binary.Uvarint(body[1:])
	if k <= 0 {
		return nil, nil, errorf(ErrMalformed, "%v: bad uncompressed length", t)
	}
	src := body[1+k:]
	if n > MaxBodySize {
		return nil, nil, errorf(ErrTooLarge, "%v: uncompressed length %d, limit %d", t, n, MaxBodySize)
	}
	if n == 0 || n > uint64(len(src))*maxLZ4Ratio {
		return nil, nil, errorf(ErrMalformed, "%v: uncompressed length %d impossible for %d compressed bytes", t, n, len(src))
	}
	s := getScratch()
	dst := s.grow(int(n))
	got, err := lz4.UncompressBlock(src, dst)
	if err != nil || got != int(n) {
		s.put()
		if err != nil {
			return nil, nil, errorf(ErrMalformed, "%v: lz4: %v", t, err)
		}
		return nil, nil, errorf(ErrMalformed, "%v: uncompressed %d bytes, declared %d", t, got, n)
	}
	return dst, s, nil
}
