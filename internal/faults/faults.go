// Package faults decides what happens to a packet on a faulty network:
// composable, seeded rules that drop, delay, duplicate or reorder packets,
// or cut links, by peer and by kind of packet. The test kit's hookable
// transport (internal/warptest/nettest) and the simulator apply the same
// rules, so a fault test reads the same on real sockets and on sim.
//
// # Place in the module
//
// faults imports nothing of this module: the transports that use it
// classify each packet (Kind) themselves. It starts no goroutines and
// reads no clock; delays are verdicts, and carrying them out is the
// transport's job.
//
// # Determinism
//
// One seed fixes every random choice. Each link (from, to) draws from its
// own stream, derived from the seed and the link with FNV-1a, so the
// interleaving of goroutines sending on different links does not change
// what a link drops: the n-th packet judged on a link gets the same
// verdict in every run with the same seed and rules. (The order in which
// one link's packets are judged is the senders' business.)
//
// Rules, Handle and their methods are safe for concurrent use.
package faults

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what a packet carries.
type Kind uint8

const (
	// KindOther is anything not classified below.
	KindOther Kind = iota
	// KindGossip is a membership (memberlist) packet.
	KindGossip
	// KindStream is a membership stream (memberlist's TCP push/pull); a
	// dropped stream is a refused connection.
	KindStream
	// KindEvents is a data-plane frame of events.
	KindEvents
	// KindAcks is a frame of acknowledgements.
	KindAcks
	// KindRepair is a repair request or an "unavailable" answer.
	KindRepair
	// KindDigest is a digest.
	KindDigest
	// KindCredit is flow-control credit.
	KindCredit
	// KindSealed is a data-plane frame the transport could not open to
	// classify (it has no key, or the frame is not ours).
	KindSealed
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindGossip:
		return "gossip"
	case KindStream:
		return "stream"
	case KindEvents:
		return "events"
	case KindAcks:
		return "acks"
	case KindRepair:
		return "repair"
	case KindDigest:
		return "digest"
	case KindCredit:
		return "credit"
	case KindSealed:
		return "sealed"
	}
	return "other"
}

// Data reports whether the kind is a frame of the data plane.
func (k Kind) Data() bool { return k >= KindEvents }

// Packet is what a rule judges.
type Packet struct {
	From, To netip.AddrPort
	Kind     Kind
	// Retransmit is set on an events frame sent again (a repair or the
	// retransmission of an awaited event).
	Retransmit bool
	// Body is the opened frame, when the transport could open it; rules
	// that look inside (a hook) must not keep it.
	Body []byte
}

// Verdict is what happens to a packet.
type Verdict struct {
	// Drop loses it.
	Drop bool
	// Delay holds it back this long before it leaves.
	Delay time.Duration
	// Copies is how many extra copies leave (duplication).
	Copies int
	// Hold, when not nil, stalls the sender until it is closed, before the
	// packet leaves: a sender stuck on a full socket buffer, rather than a
	// slow network. A simulated network may treat it as a delay.
	Hold <-chan struct{}
}

// Match selects packets: every non-empty field must match.
type Match struct {
	// From and To are the packets' senders and receivers.
	From, To []netip.AddrPort
	// Kinds are the kinds of packet.
	Kinds []Kind
	// OnlyFirst selects first transmissions only (not Retransmit ones).
	OnlyFirst bool
}

func (m *Match) matches(p *Packet) bool {
	return (len(m.From) == 0 || slices.Contains(m.From, p.From)) &&
		(len(m.To) == 0 || slices.Contains(m.To, p.To)) &&
		(len(m.Kinds) == 0 || slices.Contains(m.Kinds, p.Kind)) &&
		(!m.OnlyFirst || !p.Retransmit)
}

// Data matches the data plane's frames only.
func Data() Match {
	return Match{Kinds: []Kind{KindEvents, KindAcks, KindRepair, KindDigest, KindCredit, KindSealed}}
}

// rule is one installed rule.
type rule struct {
	id    uint64
	match Match
	// Exactly one of these.
	drop    float64
	delay   time.Duration
	jitter  time.Duration
	dupRate float64
	reorder float64
	hook    func(Packet) Verdict
	cut     *cut
}

type cut struct {
	a, b   map[netip.AddrPort]bool
	oneWay bool // only from a to b
}

// Rules is a set of rules applied to every packet, in the order they were
// added: drops first win, delays add up, copies add up.
type Rules struct {
	mu    sync.Mutex
	seed  uint64
	next  uint64
	rules []*rule
	links map[[2]netip.AddrPort]*rand.Rand
	count atomic.Int64 // len(rules), read without the lock
}

// New returns an empty rule set drawing from seed.
func New(seed uint64) *Rules {
	return &Rules{seed: seed, links: make(map[[2]netip.AddrPort]*rand.Rand)}
}

// Seed returns the seed, for failure messages.
func (r *Rules) Seed() uint64 { return r.seed }

// Len returns how many rules are installed. A transport that sees no rule
// may skip Judge, and with it the lock every verdict takes.
func (r *Rules) Len() int { return int(r.count.Load()) }

// Handle removes the rule it was returned for.
type Handle struct {
	r  *Rules
	id uint64
}

// Remove uninstalls the rule; removing twice is harmless.
func (h *Handle) Remove() {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.rules = slices.DeleteFunc(h.r.rules, func(x *rule) bool { return x.id == h.id })
	h.r.count.Store(int64(len(h.r.rules)))
}

func (r *Rules) add(x *rule) *Handle {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	x.id = r.next
	r.rules = append(r.rules, x)
	r.count.Store(int64(len(r.rules)))
	return &Handle{r: r, id: x.id}
}

// Drop loses each matching packet with probability rate (1: all of them).
func (r *Rules) Drop(rate float64, m Match) *Handle { return r.add(&rule{match: m, drop: rate}) }

// Delay holds each matching packet back by d plus a uniform jitter in
// [0, jitter).
func (r *Rules) Delay(d, jitter time.Duration, m Match) *Handle {
	return r.add(&rule{match: m, delay: d, jitter: jitter})
}

// Duplicate sends one extra copy of each matching packet with
// probability rate.
func (r *Rules) Duplicate(rate float64, m Match) *Handle {
	return r.add(&rule{match: m, dupRate: rate})
}

// Reorder holds back a fraction rate of the matching packets by d, so
// that later ones overtake them.
func (r *Rules) Reorder(rate float64, d time.Duration, m Match) *Handle {
	return r.add(&rule{match: m, reorder: rate, delay: d})
}

// Partition cuts every link between a host of a and a host of b, both
// ways, or only from a to b when oneWay.
func (r *Rules) Partition(a, b []netip.AddrPort, oneWay bool) *Handle {
	c := &cut{a: make(map[netip.AddrPort]bool), b: make(map[netip.AddrPort]bool), oneWay: oneWay}
	for _, x := range a {
		c.a[x] = true
	}
	for _, x := range b {
		c.b[x] = true
	}
	return r.add(&rule{cut: c})
}

// Hook installs a rule of the caller's: it sees each matching packet and
// returns its verdict. It is called with the rule set's lock held: it
// must be quick and must not call back into the rules.
func (r *Rules) Hook(m Match, f func(Packet) Verdict) *Handle {
	return r.add(&rule{match: m, hook: f})
}

// Judge returns the verdict for one packet.
func (r *Rules) Judge(p Packet) Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v Verdict
	for _, x := range r.rules {
		if x.cut != nil {
			if (x.cut.a[p.From] && x.cut.b[p.To]) || (!x.cut.oneWay && x.cut.b[p.From] && x.cut.a[p.To]) {
				v.Drop = true
			}
			continue
		}
		if !x.match.matches(&p) {
			continue
		}
		switch {
		case x.hook != nil:
			h := x.hook(p)
			v.Drop = v.Drop || h.Drop
			v.Delay += h.Delay
			v.Copies += h.Copies
			if h.Hold != nil {
				v.Hold = h.Hold
			}
		case x.drop > 0:
			if x.drop >= 1 || r.link(p).Float64() < x.drop {
				v.Drop = true
			}
		case x.dupRate > 0:
			if r.link(p).Float64() < x.dupRate {
				v.Copies++
			}
		case x.reorder > 0:
			if r.link(p).Float64() < x.reorder {
				v.Delay += x.delay
			}
		case x.delay > 0 || x.jitter > 0:
			v.Delay += x.delay
			if x.jitter > 0 {
				v.Delay += time.Duration(r.link(p).Int64N(int64(x.jitter)))
			}
		}
	}
	return v
}

// link returns the random stream of a packet's link. Called with mu held.
func (r *Rules) link(p Packet) *rand.Rand {
	k := [2]netip.AddrPort{p.From, p.To}
	rng := r.links[k]
	if rng == nil {
		h := fnv.New64a()
		b, _ := p.From.MarshalBinary()
		h.Write(b)
		b, _ = p.To.MarshalBinary()
		h.Write(b)
		rng = rand.New(rand.NewPCG(r.seed, h.Sum64()))
		r.links[k] = rng
	}
	return rng
}
