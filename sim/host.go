package sim

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/membership"
)

// Host is one machine of the network: a name, a zone and an address that
// outlive the processes run on it. At most one Endpoint listens on it at a
// time (Listen); a restarted node listens again on the same host, so it
// keeps its address, as a restarted process keeps its machine's.
type Host struct {
	net     *Network
	name    string
	zone    *zone
	addr    netip.AddrPort
	udpAddr *net.UDPAddr

	mu      sync.Mutex
	ep      *Endpoint // listening, or nil: the host is down
	paused  bool
	inbox   []*item       // datagrams that arrived while paused
	outbox  []heldSend    // datagrams sent while paused
	waiting []*streamConn // streams accepted while paused

	// sendMu guards pairs: each link's random stream and the time its last
	// datagram arrives.
	sendMu sync.Mutex
	pairs  map[*Host]*pair
}

// pair is the state of the link from one host to another.
type pair struct {
	rng  *rand.Rand
	zl   *zoneLink
	last time.Time // when the latest in-order datagram arrives
}

// heldSend is a datagram a paused host sent, to go out when it resumes.
type heldSend struct {
	to   netip.AddrPort
	data []byte
	info frameInfo
}

func newHost(n *Network, name string, z *zone, addr netip.AddrPort) *Host {
	return &Host{
		net: n, name: name, zone: z, addr: addr,
		udpAddr: net.UDPAddrFromAddrPort(addr),
		pairs:   make(map[*Host]*pair),
	}
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Zone returns the host's zone.
func (h *Host) Zone() string { return h.zone.name }

// Addr returns the host's address, what memberlist advertises.
func (h *Host) Addr() netip.AddrPort { return h.addr }

// String returns the name and address.
func (h *Host) String() string { return h.name + "@" + h.addr.String() }

// Up reports whether an endpoint listens on the host.
func (h *Host) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ep != nil
}

// Paused reports whether the host is paused.
func (h *Host) Paused() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused
}

// ErrInUse is returned by Listen on a host that has an endpoint already.
var ErrInUse = errors.New("sim: host has a listening endpoint")

// Listen returns a new endpoint on the host: the transport for one node
// (MeshOptions.Transport). The node owns it and shuts it down when it
// closes; the host can then listen again, for a restarted node.
func (h *Host) Listen() (*Endpoint, error) {
	h.net.mu.Lock()
	closed := h.net.closed
	h.net.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ep != nil {
		return nil, ErrInUse
	}
	ep := &Endpoint{
		host:     h,
		dataCh:   make(chan *membership.Datagram, h.net.cfg.HostQueue),
		packetCh: make(chan *memberlist.Packet, packetQueue),
		streamCh: make(chan net.Conn, streamBacklog),
		done:     make(chan struct{}),
	}
	h.ep = ep
	return ep, nil
}

// Crash takes the host down at once, as a machine that loses power: its
// endpoint stops receiving and sending (the node on it can no longer
// answer anyone), its streams break, and datagrams in flight to it are
// lost. The node's process is not stopped — close its bus to release it —
// and the host can listen again for a restart. Crashing a host that is
// down does nothing.
func (h *Host) Crash() {
	h.mu.Lock()
	ep := h.ep
	h.ep = nil
	h.paused = false
	held := len(h.inbox) + len(h.outbox)
	h.inbox, h.outbox = nil, nil
	waiting := h.waiting
	h.waiting = nil
	h.mu.Unlock()
	h.net.stats.drop(causeDown, held)
	for _, c := range waiting {
		c.s.reset(errReset)
	}
	if ep != nil {
		ep.die()
	}
	h.net.resetStreams(func(s *stream) bool { return s.from == h || s.to == h })
}

// Pause stops the host as SIGSTOP stops a process: it neither reads nor
// sends. What arrives for it waits, up to the host's queue (overflow is
// dropped, as a full socket buffer drops); what its node sends waits too;
// streams to it connect but are not served. Resume delivers all of it.
// The node's own timers keep running meanwhile (the simulation cannot
// freeze a goroutine), so on Resume it may briefly suspect its peers, as
// one whose clock jumped. Pausing a paused or down host does nothing.
func (h *Host) Pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ep != nil {
		h.paused = true
	}
}

// Resume ends a pause: the host takes what waited for it and sends what
// its node sent meanwhile, with the links' latency from now.
func (h *Host) Resume() {
	h.mu.Lock()
	if !h.paused {
		h.mu.Unlock()
		return
	}
	h.paused = false
	inbox, outbox, waiting := h.inbox, h.outbox, h.waiting
	h.inbox, h.outbox, h.waiting = nil, nil, nil
	ep := h.ep
	h.mu.Unlock()
	for _, it := range inbox {
		h.net.deliver(it)
	}
	for _, s := range outbox {
		h.net.send(h, s.to, s.data, s.info)
	}
	for _, c := range waiting {
		if ep == nil || !ep.accept(c) {
			c.s.reset(errReset)
		}
	}
}

// pairTo returns the state of the link to b. Called with sendMu held.
func (h *Host) pairTo(b *Host) *pair {
	p := h.pairs[b]
	if p == nil {
		p = &pair{rng: linkStream(h.net.cfg.Seed, h.addr, b.addr), zl: h.net.link(h.zone, b.zone)}
		h.pairs[b] = p
	}
	return p
}
