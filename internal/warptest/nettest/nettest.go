// Package nettest is the fault-injecting half of the test kit: Transport
// wraps any membership.Transport and applies internal/faults rules to
// everything the node sends — the data plane's frames by kind (it opens
// them with the cluster's keys to tell them apart), memberlist's packets
// and its streams — while keeping the wrapped transport's batched send,
// so fault tests exercise the same sendmmsg path production uses.
//
// Like every package ending in "test", it is for tests only.
package nettest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

// ErrPartitioned is what dialling across a cut returns.
var ErrPartitioned = errors.New("nettest: partitioned")

// Transport applies fault rules to what a node sends. Rules see the
// node's address as From: the address the wrapped transport advertises.
// It is safe for concurrent use.
type Transport struct {
	membership.Transport
	rules *faults.Rules
	kr    *wire.Keyring
	label string

	self atomic.Pointer[netip.AddrPort]

	mu     sync.Mutex
	closed bool
	later  sync.WaitGroup // delayed sends in flight

	sent, dropped, delayed, copies atomic.Uint64
	dropsMu                        sync.Mutex
	drops                          map[faults.Kind]uint64
}

var _ membership.MultiSender = (*Transport)(nil)

// New wraps inner. kr and label open the data plane's frames to classify
// them (nil kr: frames of an unauthenticated cluster, or KindSealed when
// they cannot be opened).
func New(inner membership.Transport, rules *faults.Rules, kr *wire.Keyring, label string) *Transport {
	t := &Transport{Transport: inner, rules: rules, kr: kr, label: label, drops: map[faults.Kind]uint64{}}
	if a, ok := inner.(interface{ Addr() netip.AddrPort }); ok {
		addr := a.Addr()
		t.self.Store(&addr)
	}
	return t
}

// Listen binds a real UDP and TCP transport on 127.0.0.1 (a port the
// system chooses) and wraps it.
func Listen(rules *faults.Rules, kr *wire.Keyring, label string) (*Transport, error) {
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1, DatagramQueue: 8192})
	if err != nil {
		return nil, err
	}
	return New(nt, rules, kr, label), nil
}

// Addr returns the node's address as rules see it.
func (t *Transport) Addr() netip.AddrPort {
	if p := t.self.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// Stats are what the rules did to this node's traffic.
type Stats struct {
	Sent, Dropped, Delayed, Copies uint64
	DroppedByKind                  map[faults.Kind]uint64
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	t.dropsMu.Lock()
	defer t.dropsMu.Unlock()
	m := make(map[faults.Kind]uint64, len(t.drops))
	for k, v := range t.drops {
		m[k] = v
	}
	return Stats{Sent: t.sent.Load(), Dropped: t.dropped.Load(), Delayed: t.delayed.Load(), Copies: t.copies.Load(), DroppedByKind: m}
}

// FinalAdvertiseAddr learns the node's address as it is advertised.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	a, p, err := t.Transport.FinalAdvertiseAddr(ip, port)
	if err == nil {
		if addr, ok := netip.AddrFromSlice(a); ok {
			ap := netip.AddrPortFrom(addr.Unmap(), uint16(p))
			t.self.Store(&ap)
		}
	}
	return a, p, err
}

// classify tells what a data-plane datagram carries.
func (t *Transport) classify(b []byte) (faults.Kind, bool, []byte) {
	// A fresh opener each time: the same datagram goes to several
	// receivers, and a replay window would refuse the second look.
	body, _, err := wire.NewOpener(t.kr, t.label).Open(nil, b)
	if err != nil {
		return faults.KindSealed, false, nil
	}
	typ, err := wire.PeekType(body)
	if err != nil {
		return faults.KindSealed, false, nil
	}
	switch typ {
	case wire.FrameEvents:
		var f wire.Events
		if wire.DecodeEvents(body, &f) != nil {
			return faults.KindSealed, false, nil
		}
		return faults.KindEvents, f.Flags&wire.FlagRetransmit != 0, body
	case wire.FrameAcks:
		return faults.KindAcks, false, body
	case wire.FrameRepairRequest, wire.FrameUnavailable:
		return faults.KindRepair, false, body
	case wire.FrameDigest:
		return faults.KindDigest, false, body
	case wire.FrameCredit:
		return faults.KindCredit, false, body
	}
	return faults.KindOther, false, body
}

// judge returns the verdict of one datagram of the data plane to addr.
func (t *Transport) judge(addr netip.AddrPort, kind faults.Kind, retransmit bool, body []byte) faults.Verdict {
	t.sent.Add(1)
	v := t.rules.Judge(faults.Packet{From: t.Addr(), To: addr, Kind: kind, Retransmit: retransmit, Body: body})
	if v.Drop {
		t.dropped.Add(1)
		t.dropsMu.Lock()
		t.drops[kind]++
		t.dropsMu.Unlock()
	}
	return v
}

// SendDatagram sends one data-plane datagram through the rules.
func (t *Transport) SendDatagram(addr netip.AddrPort, b []byte) error {
	kind, re, body := t.classify(b)
	v := t.judge(addr, kind, re, body)
	return t.carry(v, b, func(p []byte) error { return t.Transport.SendDatagram(addr, p) })
}

// SendDatagramTo sends one datagram to many through the rules: the
// receivers it passes at once go out in one call of the wrapped
// transport's batched send, when it has one.
func (t *Transport) SendDatagramTo(addrs []netip.AddrPort, b []byte) error {
	kind, re, body := t.classify(b)
	now := make([]netip.AddrPort, 0, len(addrs))
	var first error
	for _, a := range addrs {
		v := t.judge(a, kind, re, body)
		if !v.Drop && v.Delay == 0 && v.Hold == nil {
			now = append(now, a)
			for range v.Copies {
				now = append(now, a)
				t.copies.Add(1)
			}
			continue
		}
		if err := t.carry(v, b, func(p []byte) error { return t.Transport.SendDatagram(a, p) }); err != nil && first == nil {
			first = err
		}
	}
	if len(now) == 0 {
		return first
	}
	var err error
	if ms, ok := t.Transport.(membership.MultiSender); ok && len(now) > 1 {
		err = ms.SendDatagramTo(now, b)
	} else {
		for _, a := range now {
			if e := t.Transport.SendDatagram(a, b); e != nil && err == nil {
				err = e
			}
		}
	}
	if first == nil {
		first = err
	}
	return first
}

// carry does what a verdict says with one packet: nothing, send it now,
// or send it later (a copy: the caller's buffer is borrowed), with its
// duplicates.
func (t *Transport) carry(v faults.Verdict, b []byte, send func([]byte) error) error {
	if v.Drop {
		return nil // lost on the way: not the sender's error
	}
	if v.Hold != nil {
		<-v.Hold // the sender is stuck, as on a full socket buffer
	}
	if v.Delay <= 0 {
		var err error
		for range 1 + v.Copies {
			err = send(b)
		}
		t.copies.Add(uint64(v.Copies))
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.delayed.Add(1)
	t.copies.Add(uint64(v.Copies))
	p := append([]byte(nil), b...)
	t.later.Add(1)
	time.AfterFunc(v.Delay, func() {
		defer t.later.Done()
		t.mu.Lock()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return
		}
		for range 1 + v.Copies {
			_ = send(p)
		}
	})
	return nil
}

// gossipTo parses a memberlist address.
func gossipTo(addr string) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(addr)
	return ap
}

// WriteTo sends a memberlist packet through the rules.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a memberlist packet through the rules.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	v := t.judge(gossipTo(a.Addr), faults.KindGossip, false, nil)
	var sent time.Time
	err := t.carry(v, b, func(p []byte) error {
		var err error
		sent, err = t.Transport.WriteToAddress(p, a)
		return err
	})
	if sent.IsZero() {
		sent = time.Now()
	}
	return sent, err
}

// DialTimeout opens a memberlist stream, unless the rules drop it.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a memberlist stream, unless the rules drop it;
// a delay holds the dial back (within its timeout).
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	v := t.judge(gossipTo(a.Addr), faults.KindStream, false, nil)
	if v.Drop {
		return nil, ErrPartitioned
	}
	if v.Delay > 0 {
		if v.Delay >= timeout {
			return nil, ErrPartitioned
		}
		timer := time.NewTimer(v.Delay) // a slow link, not synchronisation
		<-timer.C
		timeout -= v.Delay
	}
	return t.Transport.DialAddressTimeout(a, timeout)
}

// Shutdown stops delayed sends and shuts the wrapped transport down.
func (t *Transport) Shutdown() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.later.Wait()
	return t.Transport.Shutdown()
}
