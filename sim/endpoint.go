package sim

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

const (
	// packetQueue is how many memberlist packets wait for memberlist, as
	// on a NetTransport.
	packetQueue = 1024
	// streamBacklog is how many accepted streams wait for memberlist; a
	// dial beyond it is refused, as a full accept backlog refuses.
	streamBacklog = 64
)

// Endpoint is one node's transport on a Host: it implements
// membership.Transport (memberlist's packets and streams, and the data
// plane's datagrams) and membership.MultiSender. Datagrams whose first
// byte is wire.Marker go to Datagrams, the others to memberlist, as on
// real sockets.
//
// It is safe for concurrent use and starts no goroutine: the Network
// delivers to it.
type Endpoint struct {
	host     *Host
	dataCh   chan *membership.Datagram
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	closed   atomic.Bool // shut down by its node
	dead     atomic.Bool // its host crashed, or it was shut down
	done     chan struct{}
	doneOnce sync.Once

	// seen remembers the kinds of the last frames classified, by their
	// envelope header (which names the sealer and the frame's counter),
	// for a frame sent again to more receivers by a later call: the
	// network's opener refuses a replay.
	seenMu sync.Mutex
	seen   [8]seenFrame
	seenAt int
}

type seenFrame struct {
	key  [wire.HeaderSize]byte
	info frameInfo
}

var (
	_ membership.Transport   = (*Endpoint)(nil)
	_ membership.MultiSender = (*Endpoint)(nil)
)

// Host returns the host the endpoint listens on.
func (e *Endpoint) Host() *Host { return e.host }

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() netip.AddrPort { return e.host.addr }

// die stops the endpoint: it neither sends nor receives from now on.
func (e *Endpoint) die() {
	e.dead.Store(true)
	e.doneOnce.Do(func() { close(e.done) })
}

// FinalAdvertiseAddr implements memberlist.Transport: the host's address,
// whatever was configured (a simulated host has one address only).
func (e *Endpoint) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IP(e.host.addr.Addr().AsSlice()), int(e.host.addr.Port()), nil
}

// WriteTo implements memberlist.Transport.
func (e *Endpoint) WriteTo(b []byte, addr string) (time.Time, error) {
	return e.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport: one gossip
// packet, through the links and the rules.
func (e *Endpoint) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if e.closed.Load() {
		return time.Time{}, ErrClosed
	}
	to, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim: address %q: %w", a.Addr, err)
	}
	if !e.dead.Load() {
		e.host.net.send(e.host, unmap(to), bytes.Clone(b), frameInfo{kind: KindGossip})
	}
	return time.Now(), nil
}

// SendDatagram implements membership.Transport.
func (e *Endpoint) SendDatagram(addr netip.AddrPort, b []byte) error {
	return e.SendDatagramTo([]netip.AddrPort{addr}, b)
}

// SendDatagramTo implements membership.MultiSender: the frame is copied
// once and classified once, then judged and carried per receiver.
func (e *Endpoint) SendDatagramTo(addrs []netip.AddrPort, b []byte) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if e.dead.Load() || len(addrs) == 0 {
		return nil
	}
	n := e.host.net
	data := bytes.Clone(b)
	info, release := n.classify(e, data)
	defer release()
	for _, a := range addrs {
		n.send(e.host, unmap(a), data, info)
	}
	return nil
}

// remember records a frame's kind by its envelope header.
func (e *Endpoint) remember(b []byte, info frameInfo) {
	if len(b) < wire.HeaderSize {
		return
	}
	info.body = nil
	e.seenMu.Lock()
	e.seen[e.seenAt%len(e.seen)] = seenFrame{key: [wire.HeaderSize]byte(b[:wire.HeaderSize]), info: info}
	e.seenAt++
	e.seenMu.Unlock()
}

// recall returns the kind of a frame classified before.
func (e *Endpoint) recall(b []byte) (frameInfo, bool) {
	if len(b) < wire.HeaderSize {
		return frameInfo{}, false
	}
	k := [wire.HeaderSize]byte(b[:wire.HeaderSize])
	e.seenMu.Lock()
	defer e.seenMu.Unlock()
	for _, s := range e.seen {
		if s.key == k {
			return s.info, true
		}
	}
	return frameInfo{}, false
}

// PacketCh implements memberlist.Transport.
func (e *Endpoint) PacketCh() <-chan *memberlist.Packet { return e.packetCh }

// StreamCh implements memberlist.Transport.
func (e *Endpoint) StreamCh() <-chan net.Conn { return e.streamCh }

// Datagrams implements membership.Transport.
func (e *Endpoint) Datagrams() <-chan *membership.Datagram { return e.dataCh }

// DialTimeout implements memberlist.Transport.
func (e *Endpoint) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return e.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport: a stream
// to the host at a.Addr, after one round trip of the link.
func (e *Endpoint) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if e.closed.Load() || e.dead.Load() {
		return nil, ErrClosed
	}
	to, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		return nil, fmt.Errorf("sim: address %q: %w", a.Addr, err)
	}
	return e.host.net.dial(e, unmap(to), timeout)
}

// accept hands a stream to memberlist, unless its backlog is full.
func (e *Endpoint) accept(c *streamConn) bool {
	if e.dead.Load() {
		return false
	}
	select {
	case e.streamCh <- c:
		return true
	default:
		return false
	}
}

// Shutdown implements memberlist.Transport: the endpoint stops, its
// streams break and its host is free to listen again. It is idempotent.
func (e *Endpoint) Shutdown() error {
	if e.closed.Swap(true) {
		return nil
	}
	h := e.host
	h.mu.Lock()
	if h.ep == e {
		h.ep = nil
		h.paused = false
		h.inbox, h.outbox = nil, nil
	}
	h.mu.Unlock()
	e.die()
	h.net.resetStreams(func(s *stream) bool { return s.eps[0] == e || s.eps[1] == e })
	return nil
}
