package membership

// Discovery by UDP multicast (Config.Group).
//
// A node with a Group announces itself on it — its name, advertised
// address and port, and zone, in a wire.Announce frame sealed with the
// cluster's keys and label like every frame — at start, then after 1/8,
// 1/4 and 1/2 of DefaultAnnounceInterval and every interval from then on
// (stretched by TimeScale, each with a little jitter so that nodes started
// together do not stay in step). A node that hears an announcement of a
// node it does not count as alive at that address joins it the way it
// joins a seed; memberlist's gossip does the rest. A node that has left
// neither announces nor joins.
//
// What it takes from the network, and what it trusts:
//
//   - Multicast must reach the other nodes. It does on one Ethernet
//     segment (a LAN, a bridge, a VLAN); cloud VPCs usually drop it, and
//     there seeds (Config.Seeds, "dns+" and "dnssrv+" ones included) are
//     the way. The TTL is 1 by default (Config.MulticastTTL): an
//     announcement does not cross a router.
//   - With keys, only a key holder can make an announcement this node
//     acts on: a node without the key (or with another key) is never
//     joined because of what it sends, and never hears anything it can
//     open. Announcements of another cluster label are ignored. A replayed
//     announcement is dropped by the wire Opener's window. Without keys
//     discovery is open to anyone on the segment, which the node logs.
//   - An announcement carries nothing secret: what memberlist gossips
//     anyway.
//   - Everything heard is bounded: datagrams over maxAnnounceSize are
//     dropped unread, at most announceReadRate are opened per second, at
//     most announceJoinRate joins per second follow from them, one address
//     is joined at most once per announce interval, and the joins wait in
//     a short queue that drops when full. Every datagram not acted upon is
//     counted by reason (DiscoveryStats) and logged at a bounded rate.
//
// Group membership, the outgoing interface, the TTL and multicast loopback
// (on, so that several nodes on one host find each other) are set with
// golang.org/x/net/ipv4 and ipv6. The listening socket allows its address
// to be shared, so that every node of a host listens on the group's port.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/time/rate"

	"github.com/warpmesh/warp/wire"
)

// DefaultGroupPort is the UDP port of a Group that names none.
const DefaultGroupPort = 7945

// DefaultAnnounceInterval is the period of a node's announcements on its
// Group at TimeScale 1, once the first few (at start, then after an
// eighth, a quarter and a half of it) have gone out.
const DefaultAnnounceInterval = 5 * time.Second

// Bounds of what discovery reads and does.
const (
	// maxAnnounceSize is the largest announcement read: a sealed
	// Announce with a name and a zone of MaxNameLen bytes is about 600.
	maxAnnounceSize = 1024
	// announceReadRate and announceReadBurst bound the datagrams opened
	// per second: more than a thousand nodes announcing every interval.
	announceReadRate  = 1000
	announceReadBurst = 1000
	// announceJoinRate and announceJoinBurst bound the joins that
	// announcements cause, per second.
	announceJoinRate  = 20
	announceJoinBurst = 50
	// joinQueueLen is how many joins may wait for the joiner.
	joinQueueLen = 64
	// maxRecentJoins bounds the addresses remembered as joined lately.
	maxRecentJoins = 4096
	// announceJitter is the fraction by which each delay varies.
	announceJitter = 0.1
)

// DiscoveryStats describes multicast discovery since New. Without a Group
// every field is zero.
type DiscoveryStats struct {
	// Group is the group and port announcements go to, and Interface the
	// name of the interface they are sent and heard on.
	Group     string
	Interface string
	// Sent counts announcements sent, SendErrors those the network stack
	// refused.
	Sent       uint64
	SendErrors uint64
	// Received counts datagrams read from the group, this node's own
	// announcements included (multicast loopback is on).
	Received uint64
	// Joins counts the joins that announcements caused; JoinsAnswered
	// the ones that reached the node.
	Joins         uint64
	JoinsAnswered uint64
	// Ignored counts authentic announcements that needed nothing: this
	// node's own, and those of nodes alive already or joined lately.
	Ignored uint64
	// Dropped counts the datagrams not acted upon, by reason: the
	// reasons of wire.Reason for those that do not open or decode
	// ("auth": no key or another key; "label": another cluster; "replay",
	// "malformed", "version", "oversize"), and "rate" (over the read or
	// join rate), "busy" (the join queue was full), "name" (another node
	// announcing this node's name) and "addr" (an address nobody can join).
	Dropped map[string]uint64
}

// discovery is a node's multicast discovery: its sockets, the goroutines
// that announce, listen and join, and their counters. The Membership owns
// it: start launches its goroutines in m.wg, and they end when m.done is
// closed and close has closed the sockets.
type discovery struct {
	m        *Membership
	group    netip.AddrPort
	to       *net.UDPAddr // group, as the socket API wants it
	ifi      *net.Interface
	recv     net.PacketConn // bound to the group's port, a member of the group
	send     net.PacketConn // sends to the group
	sealer   *wire.Sealer
	opener   *wire.Opener
	interval time.Duration
	self     wire.Announce

	joins chan announced

	// Owned by the receiving goroutine (and tests that call handle).
	readLimit *rate.Limiter
	joinLimit *rate.Limiter
	recent    map[netip.AddrPort]time.Time
	body      []byte
	ann       wire.Announce

	sent, sendErrors, received atomic.Uint64
	joinsMade, joined, ignored atomic.Uint64
	dropMu                     sync.Mutex
	dropped                    map[string]uint64
	closeOnce                  sync.Once
}

// announced is a node heard on the group, queued for a join.
type announced struct {
	name, zone string
	addr       netip.AddrPort
}

// parseGroup parses Config.Group: "ip" or "ip:port" of a multicast group.
func parseGroup(s string) (netip.AddrPort, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: Group %q: %s (want a multicast address such as 239.0.0.1, with an optional :port)", ErrConfig, s, why)
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(s); err == nil {
		ap = netip.AddrPortFrom(a, DefaultGroupPort)
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return ap, bad("not ip or ip:port")
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return ap, bad("not an IP address")
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return ap, bad("bad port")
		}
		ap = netip.AddrPortFrom(a, uint16(n))
	}
	a := ap.Addr()
	switch {
	case !a.Unmap().IsMulticast():
		return ap, bad("not a multicast address")
	case a.Zone() != "":
		return ap, bad("has a zone: name the interface in Interface instead")
	}
	return netip.AddrPortFrom(a.Unmap(), ap.Port()), nil
}

// validateMulticast checks Group, Interface and MulticastTTL, and fills in
// the TTL's default. A named interface must exist and be able to
// multicast now.
func (c *Config) validateMulticast() error {
	if c.Group == "" {
		if c.Interface != "" {
			return fmt.Errorf("%w: Interface %q is set without Group: it names where multicast discovery runs", ErrConfig, c.Interface)
		}
		return nil
	}
	if _, err := parseGroup(c.Group); err != nil {
		return err
	}
	switch {
	case c.MulticastTTL == 0:
		c.MulticastTTL = 1
	case c.MulticastTTL < 0 || c.MulticastTTL > 255:
		return fmt.Errorf("%w: MulticastTTL %d out of range (1..255)", ErrConfig, c.MulticastTTL)
	}
	if c.Interface != "" {
		if _, err := namedInterface(c.Interface); err != nil {
			return err
		}
	}
	return nil
}

// namedInterface returns the interface called name, if it is up and can
// multicast.
func namedInterface(name string) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(name)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: Interface %q: no such network interface (%v)", ErrConfig, name, err)
	case ifi.Flags&net.FlagMulticast == 0:
		return nil, fmt.Errorf("%w: Interface %q cannot multicast", ErrConfig, name)
	case ifi.Flags&net.FlagUp == 0:
		return nil, fmt.Errorf("%w: Interface %q is down: it cannot multicast", ErrConfig, name)
	}
	return ifi, nil
}

// pickInterface chooses the interface for a Group when Config.Interface is
// empty: the one holding the advertised address if it can multicast, or
// else the first one that is up, multicast-capable and not a loopback.
func pickInterface(adv netip.Addr) (*net.Interface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("membership: multicast: list interfaces: %w", err)
	}
	usable := func(ifi *net.Interface) bool {
		return ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0
	}
	for i := range ifaces {
		ifi := &ifaces[i]
		if usable(ifi) && hasAddr(ifi, adv) {
			return ifi, nil
		}
	}
	for i := range ifaces {
		if ifi := &ifaces[i]; usable(ifi) && ifi.Flags&net.FlagLoopback == 0 {
			return ifi, nil
		}
	}
	return nil, fmt.Errorf("%w: Group: no network interface is up, multicast-capable and not a loopback; name one in Interface", ErrConfig)
}

// hasAddr reports whether a is one of ifi's addresses.
func hasAddr(ifi *net.Interface, a netip.Addr) bool {
	if !a.IsValid() || a.IsUnspecified() {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ipn, ok := x.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// newDiscovery opens the sockets of m's Group on the chosen interface. It
// starts nothing; on error it leaves nothing open.
func newDiscovery(m *Membership) (*discovery, error) {
	cfg := &m.cfg
	group, err := parseGroup(cfg.Group) // validated
	if err != nil {
		return nil, err
	}
	var ifi *net.Interface
	if cfg.Interface != "" {
		ifi, err = namedInterface(cfg.Interface)
	} else {
		ifi, err = pickInterface(m.self.Addr())
	}
	if err != nil {
		return nil, err
	}
	d := newDiscoveryState(m, group, ifi)
	if _, err := wire.AppendAnnounce(nil, &d.self, false); err != nil {
		return nil, fmt.Errorf("membership: multicast: cannot announce this node: %w", err)
	}
	if d.recv, err = listenGroup(group, ifi); err != nil {
		return nil, err
	}
	if d.send, err = groupSender(group, ifi, cfg.MulticastTTL); err != nil {
		_ = d.recv.Close()
		return nil, err
	}
	return d, nil
}

// newDiscoveryState returns m's discovery on group and ifi without its
// sockets: what handle needs.
func newDiscoveryState(m *Membership, group netip.AddrPort, ifi *net.Interface) *discovery {
	cfg := &m.cfg
	return &discovery{
		m:         m,
		group:     group,
		to:        net.UDPAddrFromAddrPort(group),
		ifi:       ifi,
		sealer:    wire.NewSealer(cfg.Keyring, cfg.Label),
		opener:    wire.NewOpener(cfg.Keyring, cfg.Label),
		interval:  scale(DefaultAnnounceInterval, cfg.TimeScale),
		self:      wire.Announce{Node: cfg.Name, Addr: m.self, Zone: cfg.Zone},
		joins:     make(chan announced, joinQueueLen),
		readLimit: rate.NewLimiter(announceReadRate, announceReadBurst),
		joinLimit: rate.NewLimiter(announceJoinRate, announceJoinBurst),
		recent:    make(map[netip.AddrPort]time.Time),
		body:      make([]byte, 0, maxAnnounceSize),
		dropped:   make(map[string]uint64),
	}
}

// listenGroup binds a socket to the group's port, shared with the other
// nodes of the host, and joins the group on ifi.
func listenGroup(group netip.AddrPort, ifi *net.Interface) (net.PacketConn, error) {
	network, bind := "udp4", group.Addr()
	if group.Addr().Is6() {
		network = "udp6"
		bind = bind.WithZone(ifi.Name)
	}
	if runtime.GOOS == "windows" {
		// Windows binds no multicast address: listen on all of them and
		// let the membership of the group bring its datagrams.
		bind = netip.IPv6Unspecified()
		if group.Addr().Is4() {
			bind = netip.IPv4Unspecified()
		}
	}
	lc := net.ListenConfig{Control: shareAddr}
	c, err := lc.ListenPacket(context.Background(), network, netip.AddrPortFrom(bind, group.Port()).String())
	if err != nil {
		return nil, fmt.Errorf("membership: multicast: listen on %v: %w", group, err)
	}
	ip := &net.UDPAddr{IP: group.Addr().AsSlice()}
	if group.Addr().Is4() {
		err = ipv4.NewPacketConn(c).JoinGroup(ifi, ip)
	} else {
		err = ipv6.NewPacketConn(c).JoinGroup(ifi, ip)
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("membership: multicast: join group %v on %s: %w", group.Addr(), ifi.Name, err)
	}
	return c, nil
}

// groupSender returns a socket that sends to the group out of ifi, with
// the TTL (hop limit) ttl and multicast loopback on.
func groupSender(group netip.AddrPort, ifi *net.Interface, ttl int) (net.PacketConn, error) {
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenPacket(network, ":0")
	if err != nil {
		return nil, fmt.Errorf("membership: multicast: sending socket: %w", err)
	}
	if group.Addr().Is4() {
		p := ipv4.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastTTL(ttl), p.SetMulticastLoopback(true))
	} else {
		p := ipv6.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastHopLimit(ttl), p.SetMulticastLoopback(true))
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("membership: multicast: set up sending on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// start launches the announcing, listening and joining goroutines in the
// Membership's WaitGroup, and logs how discovery runs.
func (d *discovery) start() {
	m := d.m
	m.log.Log(slog.LevelInfo, "membership: multicast discovery", "group", d.group.String(),
		"interface", d.ifi.Name, "ttl", m.cfg.MulticastTTL, "every", d.interval)
	if m.cfg.Keyring == nil || m.cfg.Keyring.Empty() {
		m.log.Log(slog.LevelWarn, "membership: multicast discovery is open: the cluster has no keys, so anyone on the network segment can announce a node that this one joins; set keys to close it",
			"group", d.group.String())
	}
	m.wg.Add(3)
	go d.announceLoop()
	go d.receiveLoop()
	go d.joinLoop()
}

// close closes the sockets, which ends receiveLoop; the other goroutines
// end with m.done. Idempotent.
func (d *discovery) close() {
	d.closeOnce.Do(func() {
		_ = d.recv.Close()
		_ = d.send.Close()
	})
}

// announceDelay is the delay before announcement number i+1 (i from 0):
// interval/8, /4, /2, then interval, each varied by announceJitter.
func announceDelay(interval time.Duration, i int, r *rand.Rand) time.Duration {
	d := interval
	if i < 3 {
		d = interval >> (3 - i)
	}
	f := 1 + announceJitter*(2*r.Float64()-1)
	return time.Duration(float64(d) * f)
}

// announceLoop announces the node until m.done closes or the node leaves.
func (d *discovery) announceLoop() {
	m := d.m
	defer m.wg.Done()
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	buf := make([]byte, 0, maxAnnounceSize)
	out := make([]byte, 0, maxAnnounceSize+wire.MaxOverhead)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-m.done:
			return
		case <-timer.C:
		}
		if m.leftLocal.Load() {
			return
		}
		d.announce(buf, out)
		timer.Reset(announceDelay(d.interval, i, r))
	}
}

// announce sends one announcement.
func (d *discovery) announce(buf, out []byte) {
	body, err := wire.AppendAnnounce(buf[:0], &d.self, false)
	if err == nil {
		out, err = d.sealer.Seal(out[:0], body)
	}
	if err == nil {
		_, err = d.send.WriteTo(out, d.to)
	}
	if err != nil {
		d.sendErrors.Add(1)
		d.m.log.Log(slog.LevelWarn, "membership: multicast announcement not sent", "group", d.group.String(), "err", err)
		return
	}
	d.sent.Add(1)
}

// receiveLoop reads the group until its socket is closed.
func (d *discovery) receiveLoop() {
	defer d.m.wg.Done()
	buf := make([]byte, maxAnnounceSize+1) // one more: a datagram that fills it is too large
	retry := newBackoff(10*time.Millisecond, time.Second)
	for {
		n, _, err := d.recv.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.m.log.Log(slog.LevelWarn, "membership: multicast read", "err", err)
			if !retry.wait(d.m.done) { // an error that persists must not spin
				return
			}
			continue
		}
		retry.reset()
		d.handle(time.Now(), buf[:n])
	}
}

// handle acts on one datagram heard on the group: it opens and decodes
// it and queues a join of the announced node when it is new. Every other
// outcome is counted. It is called by one goroutine at a time.
func (d *discovery) handle(now time.Time, datagram []byte) {
	d.received.Add(1)
	if len(datagram) > maxAnnounceSize {
		d.drop("oversize", slog.LevelDebug, "an oversized datagram", "bytes", len(datagram))
		return
	}
	if !d.readLimit.AllowN(now, 1) {
		d.drop("rate", slog.LevelDebug, "over the read rate")
		return
	}
	body, h, err := d.opener.Open(d.body[:0], datagram)
	if err != nil {
		level := slog.LevelDebug
		if errors.Is(err, wire.ErrAuth) {
			level = slog.LevelWarn // a node with another key, or none, on our group
		}
		d.drop(wire.Reason(err), level, "an announcement that does not open", "err", err)
		return
	}
	if h.Sender == d.sealer.Sender() {
		d.ignored.Add(1) // our own, looped back
		return
	}
	if err := wire.DecodeAnnounce(body, &d.ann); err != nil {
		d.drop(wire.Reason(err), slog.LevelWarn, "an announcement that does not decode", "err", err)
		return
	}
	a := &d.ann
	ip := a.Addr.Addr().Unmap()
	addr := netip.AddrPortFrom(ip, a.Addr.Port())
	switch {
	case a.Node == d.self.Node:
		d.drop("name", slog.LevelWarn, "another node announces this node's name", "addr", addr.String())
		return
	case !joinable(ip, d.self.Addr.Addr()):
		d.drop("addr", slog.LevelWarn, "an announcement of an address this node cannot join", "node", a.Node, "addr", addr.String())
		return
	case d.m.leftLocal.Load() || d.known(a.Node, addr) || d.joinedLately(now, addr):
		d.ignored.Add(1)
		return
	case !d.joinLimit.AllowN(now, 1):
		d.drop("rate", slog.LevelDebug, "over the join rate", "node", a.Node)
		return
	}
	select {
	case d.joins <- announced{name: a.Node, zone: a.Zone, addr: addr}:
		d.remember(now, addr)
	default:
		d.drop("busy", slog.LevelDebug, "the join queue is full", "node", a.Node)
	}
}

// joinable reports whether this node, advertising self, can join a node
// announced at ip: not an unspecified, multicast or broadcast address, not
// an IPv6 link-local one (it would need a zone), and not a loopback one
// unless this node's is too (a node of another host that advertises its
// loopback address cannot be reached from here).
func joinable(ip, self netip.Addr) bool {
	switch {
	case ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	case ip.Is6() && ip.IsLinkLocalUnicast():
		return false
	case ip.IsLoopback():
		return self.IsLoopback()
	}
	return true
}

// known reports whether the node is alive (or suspect) at addr in the
// current snapshot.
func (d *discovery) known(name string, addr netip.AddrPort) bool {
	n, ok := d.m.Snapshot().Lookup(name)
	return ok && n.State.Alive() && n.Addr == addr
}

// joinedLately reports whether addr was queued for a join within the last
// announce interval: an announcement repeated before the join took effect
// does not cause another.
func (d *discovery) joinedLately(now time.Time, addr netip.AddrPort) bool {
	at, ok := d.recent[addr]
	return ok && now.Sub(at) < d.interval
}

// remember records a join of addr, keeping the record bounded.
func (d *discovery) remember(now time.Time, addr netip.AddrPort) {
	if len(d.recent) >= maxRecentJoins {
		for a, at := range d.recent {
			if now.Sub(at) >= d.interval {
				delete(d.recent, a)
			}
		}
		if len(d.recent) >= maxRecentJoins {
			clear(d.recent)
		}
	}
	d.recent[addr] = now
}

// drop counts a datagram not acted upon and logs it at a bounded rate.
func (d *discovery) drop(reason string, level slog.Level, what string, args ...any) {
	d.dropMu.Lock()
	d.dropped[reason]++
	d.dropMu.Unlock()
	d.m.log.Log(level, "membership: multicast: dropped "+what, append([]any{"reason", reason, "group", d.group.String()}, args...)...)
}

// joinLoop joins the queued addresses, one at a time (each may take
// memberlist's TCP timeout), until m.done closes.
func (d *discovery) joinLoop() {
	m := d.m
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case a := <-d.joins:
			if m.leftLocal.Load() {
				continue
			}
			d.joinsMade.Add(1)
			if m.joinOne(a.addr) {
				d.joined.Add(1)
				m.log.Log(slog.LevelInfo, "membership: joined a node heard on the multicast group",
					"node", a.name, "zone", a.zone, "addr", a.addr.String())
			}
		}
	}
}

// stats returns the counters.
func (d *discovery) stats() DiscoveryStats {
	d.dropMu.Lock()
	dropped := make(map[string]uint64, len(d.dropped))
	for k, v := range d.dropped {
		dropped[k] = v
	}
	d.dropMu.Unlock()
	return DiscoveryStats{
		Group:         d.group.String(),
		Interface:     ifName(d.ifi),
		Sent:          d.sent.Load(),
		SendErrors:    d.sendErrors.Load(),
		Received:      d.received.Load(),
		Joins:         d.joinsMade.Load(),
		JoinsAnswered: d.joined.Load(),
		Ignored:       d.ignored.Load(),
		Dropped:       dropped,
	}
}

func ifName(ifi *net.Interface) string {
	if ifi == nil {
		return ""
	}
	return ifi.Name
}

// DiscoveryStats returns the counters of multicast discovery (all zero
// without Config.Group).
func (m *Membership) DiscoveryStats() DiscoveryStats {
	if m.disc == nil {
		return DiscoveryStats{Dropped: map[string]uint64{}}
	}
	return m.disc.stats()
}
