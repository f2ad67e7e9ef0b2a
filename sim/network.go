package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/wire"
)

// Port is the port of every simulated host, memberlist's usual one.
const Port = 7946

// Limits of the address plan: a host is 10.Z.H.H, Z the zone's number
// from 1 and H.H the host's number within its zone from 1.
const (
	MaxZones        = 250
	MaxHostsPerZone = 65000
)

// Defaults of Config.
const (
	// DefaultHostQueue is how many datagrams wait for a host's reader, as
	// a socket's receive buffer, before new ones are dropped; it matches
	// the mesh's own queue on real sockets.
	DefaultHostQueue = 8192
	// DefaultLinkQueue is the queue of a link with a Bandwidth and no
	// Queue of its own.
	DefaultLinkQueue = 256 << 10
)

// ErrClosed is returned by a closed Network and by its endpoints once
// they are shut down.
var ErrClosed = errors.New("sim: closed")

// Link is how a link between two zones (or within one) treats the
// datagrams that cross it. Durations are in simulated time; the network
// stretches them by its TimeScale. The zero Link delivers every datagram
// at once.
type Link struct {
	// Latency is the one-way delay of every datagram and stream write.
	Latency time.Duration `json:"latency"`
	// Jitter adds a uniform random delay in [0, Jitter) to each datagram.
	// The link keeps its datagrams in order nonetheless; only Reorder
	// lets one overtake another.
	Jitter time.Duration `json:"jitter"`
	// Loss is the probability that a datagram is lost.
	Loss float64 `json:"loss"`
	// Duplicate is the probability that a datagram arrives twice.
	Duplicate float64 `json:"duplicate"`
	// Reorder is the probability that a datagram is held back by
	// ReorderDelay (default: Latency plus Jitter plus 1ms), so that those
	// sent after it overtake it.
	Reorder      float64       `json:"reorder"`
	ReorderDelay time.Duration `json:"reorderDelay"`
	// Bandwidth is the link's capacity in bytes per simulated second (0:
	// unlimited). A datagram waits until the ones before it are sent; when
	// more than Queue bytes (default DefaultLinkQueue) wait, it is dropped,
	// as a router's full queue drops.
	Bandwidth int64 `json:"bandwidth"`
	Queue     int64 `json:"queue"`
}

// Validate reports the first setting of l that makes no sense, naming it.
func (l Link) Validate() error {
	prob := func(name string, p float64) error {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return fmt.Errorf("%s %v is not a probability (0..1)", name, p)
		}
		return nil
	}
	switch {
	case l.Latency < 0:
		return fmt.Errorf("latency %v is negative", l.Latency)
	case l.Jitter < 0:
		return fmt.Errorf("jitter %v is negative", l.Jitter)
	case l.ReorderDelay < 0:
		return fmt.Errorf("reorderDelay %v is negative", l.ReorderDelay)
	case l.Bandwidth < 0:
		return fmt.Errorf("bandwidth %d is negative", l.Bandwidth)
	case l.Queue < 0:
		return fmt.Errorf("queue %d is negative", l.Queue)
	}
	if err := prob("loss", l.Loss); err != nil {
		return err
	}
	if err := prob("duplicate", l.Duplicate); err != nil {
		return err
	}
	return prob("reorder", l.Reorder)
}

// Config configures a Network.
type Config struct {
	// Seed fixes every random choice of the network (see the package
	// documentation for what it does and does not make reproducible).
	Seed uint64
	// TimeScale is how many wall-clock seconds one simulated second lasts:
	// every latency is stretched by it, and every figure is reported
	// divided by it. Run the nodes with the same MeshOptions.TimeScale. 0
	// means 1.
	TimeScale float64
	// Intra is the link within a zone and Inter the link between two
	// zones, unless SetLink says otherwise for a pair.
	Intra, Inter Link
	// HostQueue is how many data-plane datagrams wait for a host's reader
	// before new ones are dropped (default DefaultHostQueue).
	HostQueue int
	// Keys and Label are the cluster's, so that the network can open the
	// data plane's frames to tell events from acknowledgements, repairs,
	// digests and credit. Without them (or with wrong ones) every
	// data-plane datagram counts as KindSealed. The network never alters
	// or forges a frame.
	Keys  [][]byte
	Label string
}

func (c *Config) validate() error {
	if math.IsNaN(c.TimeScale) || math.IsInf(c.TimeScale, 0) || c.TimeScale < 0 {
		return fmt.Errorf("sim: TimeScale %v must be a finite number >= 0", c.TimeScale)
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if err := c.Intra.Validate(); err != nil {
		return fmt.Errorf("sim: Intra: %w", err)
	}
	if err := c.Inter.Validate(); err != nil {
		return fmt.Errorf("sim: Inter: %w", err)
	}
	switch {
	case c.HostQueue == 0:
		c.HostQueue = DefaultHostQueue
	case c.HostQueue < 0:
		return fmt.Errorf("sim: HostQueue %d is negative", c.HostQueue)
	}
	return nil
}

// Network is a simulated network of hosts in zones. Each host gets an
// address, 10.Z.H.H:7946, and an Endpoint that implements
// membership.Transport, so that unchanged MeshBuses run on it. It carries
// datagrams and streams with the latency, jitter, loss, duplication,
// reordering and bandwidth of the links between zones, applies fault
// rules (package faults: drops, delays, partitions, hooks), and counts
// every datagram by kind and by whether it stays within a zone.
//
// A Network is safe for concurrent use. It runs one goroutine, which
// delivers delayed datagrams; Close stops it.
type Network struct {
	cfg   Config
	scale float64
	epoch time.Time

	rules  *faults.Rules
	opener *wire.Opener
	decode sync.Pool // of *decodeBuf

	mu       sync.Mutex
	zones    map[string]*zone
	zoneList []*zone
	links    map[[2]*zone]*zoneLink
	parts    []*Partition
	streams  map[*stream]struct{}
	closed   bool

	hosts atomic.Pointer[hostTable] // copy on write

	// boot steers state exchanges while a large cluster starts.
	boot atomic.Pointer[bootGate]

	sched scheduler
	stats counters
}

// hostTable is the set of hosts, replaced whole when a host is added.
type hostTable struct {
	byAddr map[netip.AddrPort]*Host
	byName map[string]*Host
	list   []*Host
}

// zone is one zone of the network.
type zone struct {
	name  string
	num   int // 1-based, the Z of 10.Z.H.H
	hosts int // hosts added so far
}

// zoneLink is the directed link from one zone to another (or within one):
// its settings and its queue.
type zoneLink struct {
	mu        sync.Mutex
	cfg       Link
	busyUntil time.Duration // simulated time the queue drains
}

// New returns a network with no hosts.
func New(cfg Config) (*Network, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kr, err := wire.NewKeyring(cfg.Keys...)
	if err != nil {
		return nil, fmt.Errorf("sim: Keys: %w", err)
	}
	n := &Network{
		cfg:     cfg,
		scale:   cfg.TimeScale,
		epoch:   time.Now(),
		rules:   faults.New(cfg.Seed),
		opener:  wire.NewOpener(kr, cfg.Label, wire.WithMaxSenders(1<<16)),
		zones:   make(map[string]*zone),
		links:   make(map[[2]*zone]*zoneLink),
		streams: make(map[*stream]struct{}),
	}
	n.decode.New = func() any { return &decodeBuf{body: make([]byte, 0, 2048)} }
	n.hosts.Store(&hostTable{byAddr: map[netip.AddrPort]*Host{}, byName: map[string]*Host{}})
	n.sched.start(n.deliver)
	return n, nil
}

// Close stops the network: datagrams in flight are dropped, and sends
// after it are dropped too. Close the buses running on it first. It is
// idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	streams := make([]*stream, 0, len(n.streams))
	for s := range n.streams {
		streams = append(streams, s)
	}
	n.mu.Unlock()
	for _, s := range streams {
		s.reset(errReset)
	}
	n.sched.stop()
	return nil
}

// Seed returns the network's seed, for failure messages.
func (n *Network) Seed() uint64 { return n.cfg.Seed }

// TimeScale returns how many wall-clock seconds a simulated second lasts.
func (n *Network) TimeScale() float64 { return n.scale }

// Now returns the simulated time since the network was created.
func (n *Network) Now() time.Duration { return n.Sim(time.Since(n.epoch)) }

// Sim converts a wall-clock duration into simulated time.
func (n *Network) Sim(wall time.Duration) time.Duration {
	return time.Duration(float64(wall) / n.scale)
}

// Wall converts a simulated duration into wall-clock time.
func (n *Network) Wall(sim time.Duration) time.Duration {
	f := float64(sim) * n.scale
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// zoneLocked returns the zone named name, creating it. Called with mu held.
func (n *Network) zoneLocked(name string) (*zone, error) {
	if z, ok := n.zones[name]; ok {
		return z, nil
	}
	if len(n.zoneList) >= MaxZones {
		return nil, fmt.Errorf("sim: more than %d zones", MaxZones)
	}
	z := &zone{name: name, num: len(n.zoneList) + 1}
	n.zones[name] = z
	n.zoneList = append(n.zoneList, z)
	return z, nil
}

// Zones returns the zones' names in the order they were created.
func (n *Network) Zones() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.zoneList))
	for i, z := range n.zoneList {
		out[i] = z.name
	}
	return out
}

// AddHost adds a host named name in zone (created on first use) and
// returns it. Its address is 10.Z.H.H:7946. Names are unique.
func (n *Network) AddHost(name, zoneName string) (*Host, error) {
	if name == "" {
		return nil, errors.New("sim: a host needs a name")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	old := n.hosts.Load()
	if _, dup := old.byName[name]; dup {
		return nil, fmt.Errorf("sim: host %q exists", name)
	}
	z, err := n.zoneLocked(zoneName)
	if err != nil {
		return nil, err
	}
	if z.hosts >= MaxHostsPerZone {
		return nil, fmt.Errorf("sim: zone %q has %d hosts already", zoneName, MaxHostsPerZone)
	}
	z.hosts++
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(z.num), byte(z.hosts >> 8), byte(z.hosts)}), Port)
	h := newHost(n, name, z, addr)
	t := &hostTable{
		byAddr: make(map[netip.AddrPort]*Host, len(old.list)+1),
		byName: make(map[string]*Host, len(old.list)+1),
		list:   append(slices.Clip(old.list), h),
	}
	for _, x := range t.list {
		t.byAddr[x.addr] = x
		t.byName[x.name] = x
	}
	n.hosts.Store(t)
	return h, nil
}

// Host returns the host named name, or nil.
func (n *Network) Host(name string) *Host { return n.hosts.Load().byName[name] }

// HostAt returns the host at addr, or nil.
func (n *Network) HostAt(addr netip.AddrPort) *Host {
	return n.hosts.Load().byAddr[unmap(addr)]
}

// Hosts returns every host, in the order they were added.
func (n *Network) Hosts() []*Host { return slices.Clone(n.hosts.Load().list) }

// ZoneHosts returns the hosts of the named zones, in the order they were
// added.
func (n *Network) ZoneHosts(zones ...string) []*Host {
	var out []*Host
	for _, h := range n.hosts.Load().list {
		if slices.Contains(zones, h.zone.name) {
			out = append(out, h)
		}
	}
	return out
}

// link returns the directed link from zone a to zone b, creating it with
// the default settings.
func (n *Network) link(a, b *zone) *zoneLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linkLocked(a, b)
}

func (n *Network) linkLocked(a, b *zone) *zoneLink {
	k := [2]*zone{a, b}
	if l, ok := n.links[k]; ok {
		return l
	}
	l := &zoneLink{cfg: n.cfg.Inter}
	if a == b {
		l.cfg = n.cfg.Intra
	}
	n.links[k] = l
	return l
}

// SetLink changes the link from zone from to zone to (the same name for
// the link within a zone), in that direction only; zones that do not
// exist yet are created. It takes effect for the next datagram.
func (n *Network) SetLink(from, to string, l Link) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("sim: link %s->%s: %w", from, to, err)
	}
	n.mu.Lock()
	a, err := n.zoneLocked(from)
	if err == nil {
		var b *zone
		if b, err = n.zoneLocked(to); err == nil {
			zl := n.linkLocked(a, b)
			zl.mu.Lock()
			zl.cfg = l
			zl.mu.Unlock()
		}
	}
	n.mu.Unlock()
	return err
}

// SetLinks changes the links between zones a and b in both directions.
func (n *Network) SetLinks(a, b string, l Link) error {
	if err := n.SetLink(a, b, l); err != nil {
		return err
	}
	return n.SetLink(b, a, l)
}

// LinkOf returns the current settings of the link from zone from to zone
// to.
func (n *Network) LinkOf(from, to string) (Link, bool) {
	n.mu.Lock()
	a, okA := n.zones[from]
	b, okB := n.zones[to]
	if !okA || !okB {
		n.mu.Unlock()
		return Link{}, false
	}
	zl := n.linkLocked(a, b)
	n.mu.Unlock()
	zl.mu.Lock()
	defer zl.mu.Unlock()
	return zl.cfg, true
}

// SetAllLinks changes every link, within and between the zones that
// exist, with f applied to each one's current settings: for example
// to add loss everywhere.
func (n *Network) SetAllLinks(f func(from, to string, l Link) Link) error {
	n.mu.Lock()
	zs := slices.Clone(n.zoneList)
	n.mu.Unlock()
	for _, a := range zs {
		for _, b := range zs {
			cur, _ := n.LinkOf(a.name, b.name)
			if err := n.SetLink(a.name, b.name, f(a.name, b.name, cur)); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkStream derives the random stream of the link from a to b: FNV-1a
// over a tag and both addresses, so that it depends on the seed and the
// link only (never on the order in which links were first used), and
// differs from the stream the fault rules draw from for the same link.
func linkStream(seed uint64, a, b netip.AddrPort) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte("sim/link"))
	x, _ := a.MarshalBinary()
	h.Write(x)
	x, _ = b.MarshalBinary()
	h.Write(x)
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}
