package mesh_test

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

// secTap wraps a node's real transport and lets a test judge each
// data-plane datagram the node sends to one address by the frame inside
// (the tap holds the cluster key): pass it, drop it, or stall the sending
// goroutine until a channel closes. Membership traffic is never touched.
type secTap struct {
	membership.Transport

	mu   sync.Mutex
	to   netip.AddrPort
	rule func(body []byte) secVerdict
}

// secVerdict is a tap rule's decision about one datagram.
type secVerdict struct {
	drop bool
	// hold, when not nil, stalls the send until it is closed.
	hold <-chan struct{}
}

func newSecTap(t testing.TB) *secTap {
	t.Helper()
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &secTap{Transport: nt}
}

// judge applies rule to every datagram sent to addr from now on (a nil
// rule passes everything).
func (p *secTap) judge(addr netip.AddrPort, rule func(body []byte) secVerdict) {
	p.mu.Lock()
	p.to, p.rule = addr, rule
	p.mu.Unlock()
}

func (p *secTap) SendDatagram(addr netip.AddrPort, dg []byte) error {
	p.mu.Lock()
	rule := p.rule
	if addr != p.to {
		rule = nil
	}
	p.mu.Unlock()
	if rule != nil {
		// A fresh Opener each time: the tap must not refuse a frame as
		// a replay, whatever order the node sends its frames in.
		kr, _ := wire.NewKeyring(secClusterKey)
		body, _, err := wire.NewOpener(kr, secLabel).Open(nil, dg)
		if err == nil {
			v := rule(body)
			if v.drop {
				return nil
			}
			if v.hold != nil {
				<-v.hold
			}
		}
	}
	return p.Transport.SendDatagram(addr, dg)
}

// secEventsIn decodes an Events frame body, or returns nil.
func secEventsIn(body []byte) *wire.Events {
	var f wire.Events
	if typ, err := wire.PeekType(body); err != nil || typ != wire.FrameEvents || wire.DecodeEvents(body, &f) != nil {
		return nil
	}
	return &f
}

// secHasKey reports whether an Events frame body carries an event of key.
func secHasKey(body []byte, key string) bool {
	if f := secEventsIn(body); f != nil {
		for _, ev := range f.Events {
			if ev.Key == key {
				return true
			}
		}
	}
	return false
}

// secIsDigest reports whether body is a Digest frame.
func secIsDigest(body []byte) bool {
	typ, err := wire.PeekType(body)
	return err == nil && typ == wire.FrameDigest
}
