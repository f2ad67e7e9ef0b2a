package wire

import (
	"math"
	"time"
)

// This file holds the small frames of the protocol: acknowledgements,
// repair requests and their answers, digests and presence. Their msgpack
// layouts are one array each:
//
//	Acks:          [Origin, Boot, [[Node, [Seq-prev, …], NodeBoot], …]]
//	RepairRequest: [Origin, Boot, [From, To, From, To, …]]
//	Unavailable:   [Origin, Boot, [From, To, From, To, …]]
//	Digest:        [Origin, Boot, Seq, Start, Blocked, Relay]
//	Presence:      [Node, Zone, Region, Boot, Interval (ns), Leaving]
//	Credit:        [Origin, Boot, Node, NodeBoot, Limit]
//
// An ack's sequence numbers are signed differences from the previous one
// (from 0), so a run of consecutive numbers costs a byte each.

// Acks says which nodes applied some of Origin's events. A relay aggregates
// the acks of several nodes of its zone in one frame.
//
// Decoding into an Acks reuses its Acks slice and each element's Seqs.
type Acks struct {
	// Origin numbered the acknowledged events; Boot is its incarnation.
	Origin string
	Boot   uint64
	// Acks lists, per acknowledging node, the sequence numbers it applied.
	Acks []Ack
}

// Ack is one node's acknowledgements.
type Ack struct {
	// Node is the acknowledging node; never empty.
	Node string
	// Seqs are the sequence numbers of the events it applied.
	Seqs []uint64
	// Boot is the acknowledging node's incarnation: an ack promises that
	// this incarnation applied the events, so a publisher counts it only
	// for the incarnation it sent them to. 0 when the sender did not say
	// (a frame of the first layout, which had two fields).
	Boot uint64
}

// SeqRange is an inclusive range of sequence numbers; From <= To.
type SeqRange struct{ From, To uint64 }

// RepairRequest asks Origin to resend the events whose sequence numbers are
// in Ranges (a negative acknowledgement).
//
// Decoding into a RepairRequest reuses its Ranges slice.
type RepairRequest struct {
	Origin string
	Boot   uint64
	Ranges []SeqRange
}

// Unavailable is Origin's answer that it no longer holds the events in
// Ranges; the receiver resyncs what it covers.
//
// Decoding into an Unavailable reuses its Ranges slice.
type Unavailable struct {
	Origin string
	Boot   uint64
	Ranges []SeqRange
}

// Digest announces the highest sequence number Origin has assigned, so that
// receivers detect the loss of the last events of a burst, and where the
// receiver's window starts: Origin sends every event numbered after Start
// to this receiver (Start is Origin's last number when the receiver joined
// its view), so a receiver that first heard of Origin through a later event
// still repairs what it missed since Start. On a broker (package bridge),
// which keeps nothing to repair from, Start is Seq unless Origin failed to
// send events numbered after Start: a receiver that did not see those
// numbers go by resyncs.
type Digest struct {
	Origin string
	Boot   uint64
	Seq    uint64
	Start  uint64
	// Blocked says that Origin holds events back for want of the
	// receiver's flow-control credit: the receiver answers with its
	// credit at once (the last one may have been lost).
	Blocked bool
	// Relay tells the receiver it is this digest's relay for its zone: it
	// applies the digest and passes it on to the other nodes of its zone,
	// as it does with events.
	Relay bool
}

// Presence is a bridge node announcing itself on a broker, every Interval.
type Presence struct {
	// Node is the announcing node; never empty.
	Node string
	// Zone and Region are the node's.
	Zone, Region string
	// Boot is the node's incarnation.
	Boot uint64
	// Interval is the time until the next announcement; never negative.
	Interval time.Duration
	// Leaving is set in the last announcement of a node that closes.
	Leaving bool
}

// Credit is flow control: Node (incarnation NodeBoot) lets Origin
// (incarnation Boot) send it the events numbered up to Limit. A receiver
// grants what its subscriptions can take; a publisher does not run more
// than its slowest receiver's credit ahead (see the mesh's documentation).
type Credit struct {
	Origin   string
	Boot     uint64
	Node     string
	NodeBoot uint64
	Limit    uint64
}

// Field counts and minimum encoded sizes, for the length checks.
const (
	acksFields     = 3
	ackFields      = 2 // the fields every ack has; Boot came third
	ackAllFields   = 3
	creditFields   = 5
	minAckSize     = 4 // array, 1-byte node, empty seq array
	rangesFields   = 3
	digestFields   = 4 // the fields every digest has; Blocked came fifth
	digestAll      = 6 // Relay came sixth
	presenceFields = 6
)

// AppendAcks appends the body of an Acks frame to dst.
func AppendAcks(dst []byte, f *Acks, compress bool) ([]byte, error) {
	if err := checkName("origin", f.Origin, true); err != nil {
		return dst, err
	}
	if len(f.Acks) > MaxAckNodes {
		return dst, errorf(ErrTooLarge, "acks of %d nodes, limit %d", len(f.Acks), MaxAckNodes)
	}
	total := 0
	for i := range f.Acks {
		if err := checkName("ack node", f.Acks[i].Node, true); err != nil {
			return dst, err
		}
		total += len(f.Acks[i].Seqs)
	}
	if total > MaxAckSeqs {
		return dst, errorf(ErrTooLarge, "%d acked sequence numbers, limit %d", total, MaxAckSeqs)
	}
	return encodeBody(dst, FrameAcks, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, acksFields)
		b = appendString(b, f.Origin)
		b = appendUint(b, f.Boot)
		b = appendArrayHeader(b, len(f.Acks))
		for i := range f.Acks {
			a := &f.Acks[i]
			b = appendArrayHeader(b, ackAllFields)
			b = appendString(b, a.Node)
			b = appendArrayHeader(b, len(a.Seqs))
			var prev uint64
			for _, s := range a.Seqs {
				b = appendInt(b, int64(s-prev))
				prev = s
			}
			b = appendUint(b, a.Boot)
		}
		return b
	})
}

// DecodeAcks decodes an Acks frame body into f, reusing f.Acks and their
// Seqs. On error f.Acks is empty and the other fields are unspecified.
func DecodeAcks(body []byte, f *Acks) error {
	err := decodeWith(body, FrameAcks, "acks", func(r *reader) {
		n := header(r, acksFields)
		r.stringInto(&f.Origin, "origin", MaxNameLen)
		if r.err == nil && f.Origin == "" {
			r.fail(ErrMalformed, "origin is empty")
		}
		f.Boot = r.uint("boot")
		count := r.arrayLen("acks", MaxAckNodes, minAckSize)
		if r.err != nil {
			return
		}
		f.Acks = grow(f.Acks, count)
		total := 0
		r.what = "ack"
		for i := range f.Acks {
			r.item = i
			a := &f.Acks[i]
			m := header(r, ackFields)
			r.stringInto(&a.Node, "node", MaxNameLen)
			if r.err == nil && a.Node == "" {
				r.fail(ErrMalformed, "node is empty")
			}
			k := r.arrayLen("seqs", MaxAckSeqs-total, minArrayElement)
			if r.err != nil {
				return
			}
			total += k
			a.Seqs = grow(a.Seqs, k)
			var prev uint64
			for j := range a.Seqs {
				prev += uint64(r.int("seq"))
				a.Seqs[j] = prev
			}
			a.Boot = 0
			if m > ackFields {
				a.Boot = r.uint("node boot")
			}
			r.skipFields(m, ackAllFields)
		}
		r.what, r.item = "acks", -1
		r.skipFields(n, acksFields)
	})
	if err != nil {
		f.Acks = f.Acks[:0]
	}
	return err
}

// AppendRepairRequest appends the body of a RepairRequest frame to dst.
func AppendRepairRequest(dst []byte, f *RepairRequest, compress bool) ([]byte, error) {
	return appendRanges(dst, FrameRepairRequest, f.Origin, f.Boot, f.Ranges, compress)
}

// DecodeRepairRequest decodes a RepairRequest frame body into f, reusing
// f.Ranges. On error f.Ranges is empty and the other fields are unspecified.
func DecodeRepairRequest(body []byte, f *RepairRequest) error {
	return decodeRanges(body, FrameRepairRequest, "repair request", &f.Origin, &f.Boot, &f.Ranges)
}

// AppendUnavailable appends the body of an Unavailable frame to dst.
func AppendUnavailable(dst []byte, f *Unavailable, compress bool) ([]byte, error) {
	return appendRanges(dst, FrameUnavailable, f.Origin, f.Boot, f.Ranges, compress)
}

// DecodeUnavailable decodes an Unavailable frame body into f, reusing
// f.Ranges. On error f.Ranges is empty and the other fields are unspecified.
func DecodeUnavailable(body []byte, f *Unavailable) error {
	return decodeRanges(body, FrameUnavailable, "unavailable", &f.Origin, &f.Boot, &f.Ranges)
}

func appendRanges(dst []byte, t FrameType, origin string, boot uint64, ranges []SeqRange, compress bool) ([]byte, error) {
	if err := checkName("origin", origin, true); err != nil {
		return dst, err
	}
	if len(ranges) > MaxRanges {
		return dst, errorf(ErrTooLarge, "%v: %d ranges, limit %d", t, len(ranges), MaxRanges)
	}
	for _, rg := range ranges {
		if rg.From > rg.To {
			return dst, errorf(ErrMalformed, "%v: range %d-%d is reversed", t, rg.From, rg.To)
		}
	}
	return encodeBody(dst, t, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, rangesFields)
		b = appendString(b, origin)
		b = appendUint(b, boot)
		b = appendArrayHeader(b, 2*len(ranges))
		for _, rg := range ranges {
			b = appendUint(b, rg.From)
			b = appendUint(b, rg.To)
		}
		return b
	})
}

func decodeRanges(body []byte, t FrameType, what string, origin *string, boot *uint64, ranges *[]SeqRange) error {
	err := decodeWith(body, t, what, func(r *reader) {
		n := header(r, rangesFields)
		r.stringInto(origin, "origin", MaxNameLen)
		if r.err == nil && *origin == "" {
			r.fail(ErrMalformed, "origin is empty")
		}
		*boot = r.uint("boot")
		count := r.arrayLen("ranges", 2*MaxRanges, minArrayElement)
		if r.err == nil && count%2 != 0 {
			r.fail(ErrMalformed, "ranges: odd count %d", count)
		}
		if r.err != nil {
			return
		}
		*ranges = grow(*ranges, count/2)
		for i := range *ranges {
			rg := &(*ranges)[i]
			rg.From = r.uint("from")
			rg.To = r.uint("to")
			if r.err == nil && rg.From > rg.To {
				r.fail(ErrMalformed, "range %d-%d is reversed", rg.From, rg.To)
			}
		}
		r.skipFields(n, rangesFields)
	})
	if err != nil {
		*ranges = (*ranges)[:0]
	}
	return err
}

// AppendDigest appends the body of a Digest frame to dst.
func AppendDigest(dst []byte, f *Digest, compress bool) ([]byte, error) {
	if err := checkName("origin", f.Origin, true); err != nil {
		return dst, err
	}
	if f.Start > f.Seq {
		return dst, errorf(ErrMalformed, "digest start %d beyond seq %d", f.Start, f.Seq)
	}
	return encodeBody(dst, FrameDigest, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, digestAll)
		b = appendString(b, f.Origin)
		b = appendUint(b, f.Boot)
		b = appendUint(b, f.Seq)
		b = appendUint(b, f.Start)
		b = appendBool(b, f.Blocked)
		return appendBool(b, f.Relay)
	})
}

// DecodeDigest decodes a Digest frame body into f.
func DecodeDigest(body []byte, f *Digest) error {
	return decodeWith(body, FrameDigest, "digest", func(r *reader) {
		n := header(r, digestFields)
		r.stringInto(&f.Origin, "origin", MaxNameLen)
		if r.err == nil && f.Origin == "" {
			r.fail(ErrMalformed, "origin is empty")
		}
		f.Boot = r.uint("boot")
		f.Seq = r.uint("seq")
		f.Start = r.uint("start")
		if r.err == nil && f.Start > f.Seq {
			r.fail(ErrMalformed, "digest start %d beyond seq %d", f.Start, f.Seq)
		}
		f.Blocked, f.Relay = false, false
		if n > digestFields {
			f.Blocked = r.bool("blocked")
		}
		if n > digestFields+1 {
			f.Relay = r.bool("relay")
		}
		r.skipFields(n, digestAll)
	})
}

// AppendPresence appends the body of a Presence frame to dst.
func AppendPresence(dst []byte, f *Presence, compress bool) ([]byte, error) {
	if err := checkName("node", f.Node, true); err != nil {
		return dst, err
	}
	if err := checkName("zone", f.Zone, false); err != nil {
		return dst, err
	}
	if err := checkName("region", f.Region, false); err != nil {
		return dst, err
	}
	if f.Interval < 0 {
		return dst, errorf(ErrMalformed, "presence: negative interval %v", f.Interval)
	}
	return encodeBody(dst, FramePresence, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, presenceFields)
		b = appendString(b, f.Node)
		b = appendString(b, f.Zone)
		b = appendString(b, f.Region)
		b = appendUint(b, f.Boot)
		b = appendInt(b, int64(f.Interval))
		return appendBool(b, f.Leaving)
	})
}

// DecodePresence decodes a Presence frame body into f.
func DecodePresence(body []byte, f *Presence) error {
	return decodeWith(body, FramePresence, "presence", func(r *reader) {
		n := header(r, presenceFields)
		r.stringInto(&f.Node, "node", MaxNameLen)
		if r.err == nil && f.Node == "" {
			r.fail(ErrMalformed, "node is empty")
		}
		r.stringInto(&f.Zone, "zone", MaxNameLen)
		r.stringInto(&f.Region, "region", MaxNameLen)
		f.Boot = r.uint("boot")
		f.Interval = time.Duration(r.int("interval"))
		if r.err == nil && f.Interval < 0 {
			r.fail(ErrMalformed, "negative interval %v", f.Interval)
		}
		f.Leaving = r.bool("leaving")
		r.skipFields(n, presenceFields)
	})
}

// AppendCredit appends the body of a Credit frame to dst.
func AppendCredit(dst []byte, f *Credit, compress bool) ([]byte, error) {
	if err := checkName("origin", f.Origin, true); err != nil {
		return dst, err
	}
	if err := checkName("node", f.Node, true); err != nil {
		return dst, err
	}
	return encodeBody(dst, FrameCredit, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, creditFields)
		b = appendString(b, f.Origin)
		b = appendUint(b, f.Boot)
		b = appendString(b, f.Node)
		b = appendUint(b, f.NodeBoot)
		return appendUint(b, f.Limit)
	})
}

// DecodeCredit decodes a Credit frame body into f.
func DecodeCredit(body []byte, f *Credit) error {
	return decodeWith(body, FrameCredit, "credit", func(r *reader) {
		n := header(r, creditFields)
		r.stringInto(&f.Origin, "origin", MaxNameLen)
		if r.err == nil && f.Origin == "" {
			r.fail(ErrMalformed, "origin is empty")
		}
		f.Boot = r.uint("boot")
		r.stringInto(&f.Node, "node", MaxNameLen)
		if r.err == nil && f.Node == "" {
			r.fail(ErrMalformed, "node is empty")
		}
		f.NodeBoot = r.uint("node boot")
		f.Limit = r.uint("limit")
		r.skipFields(n, creditFields)
	})
}

// decodeWith opens body as a frame of type t and runs dec on its payload.
func decodeWith(body []byte, t FrameType, what string, dec func(*reader)) error {
	p, s, err := payload(body, t)
	if err != nil {
		return err
	}
	r := newReader(p, what)
	dec(&r)
	if s != nil {
		s.put()
	}
	return r.err
}

// header reads a frame's outer array header, which must hold at least the
// known fields; it returns the field count, for skipping newer ones.
func header(r *reader, known int) int {
	n := r.arrayLen("frame", math.MaxInt, minArrayElement)
	if r.err == nil && n < known {
		r.fail(ErrMalformed, "frame has %d fields, want at least %d", n, known)
	}
	return n
}

// grow returns s with length n, reusing its array when large enough. The
// caller checked n against the input size and the limits.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
