package membership

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/warpmesh/warp/wire"
)

// These tests exercise multicast discovery without sending multicast: the
// configuration checks, and the handling of what is heard on a group,
// datagram by datagram. The tests in network namespaces
// (multicast_netns_test.go) send real announcements.

func TestParseGroup(t *testing.T) {
	for in, want := range map[string]string{
		"239.0.0.1":             "239.0.0.1:7945",
		"239.0.0.1:9000":        "239.0.0.1:9000",
		"224.0.0.251:5353":      "224.0.0.251:5353",
		"ff02::1:7":             "[ff02::1:7]:7945",
		"[ff15::abcd]:7000":     "[ff15::abcd]:7000",
		"::ffff:239.1.2.3":      "239.1.2.3:7945",
		"[::ffff:239.1.2.3]:77": "239.1.2.3:77",
	} {
		got, err := parseGroup(in)
		if err != nil || got.String() != want {
			t.Errorf("parseGroup(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.1", "10.0.0.1:7945", "239.0.0.1:0", "239.0.0.1:70000", "239.0.0.1:x",
		"group.example.com", "group.example.com:7945", "[ff02::1%eth0]:7945", "ff02::1%eth0", "239.0.0"} {
		if got, err := parseGroup(in); !errors.Is(err, ErrConfig) {
			t.Errorf("parseGroup(%q) = %v, %v; want ErrConfig", in, got, err)
		}
	}
}

// nonMulticastInterface returns an interface that cannot multicast (the
// loopback, on Linux), or skips.
func nonMulticastInterface(t *testing.T) string {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagMulticast == 0 {
			return ifi.Name
		}
	}
	t.Skip("every interface of this host can multicast")
	return ""
}

// TestMulticastConfigErrors: bad multicast settings are errors of
// Validate, and a bad interface is named in the error.
func TestMulticastConfigErrors(t *testing.T) {
	cases := map[string]struct {
		c    Config
		name string // the error must name this
	}{
		"not multicast":     {Config{Group: "10.1.2.3"}, "10.1.2.3"},
		"interface alone":   {Config{Interface: "eth0"}, "eth0"},
		"missing interface": {Config{Group: "239.1.2.3", Interface: "warp-nope0"}, "warp-nope0"},
		"negative ttl":      {Config{Group: "239.1.2.3", MulticastTTL: -1}, "MulticastTTL"},
		"huge ttl":          {Config{Group: "239.1.2.3", MulticastTTL: 256}, "MulticastTTL"},
	}
	lo := nonMulticastInterface(t)
	cases["interface without multicast"] = struct {
		c    Config
		name string
	}{Config{Group: "239.1.2.3", Interface: lo}, lo}
	for what, c := range cases {
		err := c.c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %v, want ErrConfig naming %q", what, err, c.name)
		}
	}
	c := Config{Group: "239.1.2.3"}
	if err := c.Validate(); err != nil || c.MulticastTTL != 1 {
		t.Errorf("a group alone: %v, TTL %d; want no error and TTL 1", err, c.MulticastTTL)
	}
}

// TestNewRefusesABadInterface: New fails on an interface that does not
// exist or cannot multicast, naming it, and leaves nothing running (the
// package's TestMain checks goroutines).
func TestNewRefusesABadInterface(t *testing.T) {
	for _, name := range []string{"warp-nope0", nonMulticastInterface(t)} {
		c := testConfig("badif")
		c.Group, c.Interface = "239.1.2.3", name
		m, err := New(c)
		if err == nil {
			_ = m.Close()
			t.Fatalf("New with Interface %q: no error", name)
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("New with Interface %q: %v, want ErrConfig naming it", name, err)
		}
	}
}

func TestAnnounceDelays(t *testing.T) {
	const interval = 8 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, interval, interval, interval} {
		got := announceDelay(interval, i, r)
		lo := time.Duration(float64(want) * (1 - announceJitter))
		hi := time.Duration(float64(want) * (1 + announceJitter))
		if got < lo || got > hi {
			t.Errorf("delay %d: %v, want %v ± %.0f%%", i, got, want, 100*announceJitter)
		}
	}
}

// announcer seals announcements as a node of a cluster would.
type announcer struct {
	sealer *wire.Sealer
}

func newAnnouncer(t testing.TB, label string, keys ...[]byte) *announcer {
	t.Helper()
	return &announcer{sealer: wire.NewSealer(mcKeyring(t, keys...), label)}
}

func mcKeyring(t testing.TB, keys ...[]byte) *wire.Keyring {
	t.Helper()
	kr, err := wire.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func (a *announcer) datagram(t testing.TB, ann wire.Announce) []byte {
	t.Helper()
	body, err := wire.AppendAnnounce(nil, &ann, false)
	if err != nil {
		t.Fatal(err)
	}
	return a.seal(t, body)
}

func (a *announcer) seal(t testing.TB, body []byte) []byte {
	t.Helper()
	d, err := a.sealer.Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	mcKey      = []byte("0123456789abcdef0123456789abcdef")
	mcOtherKey = []byte("fedcba9876543210fedcba9876543210")
)

// testDiscovery is the discovery state of a node started without a group
// (no sockets), to feed datagrams to by hand.
func testDiscovery(t testing.TB, name, label string, keys ...[]byte) (*Membership, *discovery) {
	t.Helper()
	c := testConfig(name)
	c.Label = label
	c.Keyring = mcKeyring(t, keys...)
	m := startNode(t, c)
	return m, newDiscoveryState(m, netip.MustParseAddrPort("239.1.2.3:7945"), nil)
}

// queuedJoins returns (and takes) the addresses queued for joining.
func queuedJoins(d *discovery) []netip.AddrPort {
	var out []netip.AddrPort
	for {
		select {
		case a := <-d.joins:
			out = append(out, a.addr)
		default:
			return out
		}
	}
}

// TestAnnouncementHandling feeds one node's discovery the datagrams a
// group may carry: only an authentic announcement of a node it does not
// know makes it join, once; everything else is counted and dropped.
func TestAnnouncementHandling(t *testing.T) {
	const label = "mc"
	_, d := testDiscovery(t, "me", label, mcKey)
	peer := wire.Announce{Node: "peer", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Zone: "z"}
	good := newAnnouncer(t, label, mcKey)
	now := time.Now()

	// Forgeries and strangers: nothing is joined.
	replayed := good.datagram(t, wire.Announce{Node: "first", Addr: netip.MustParseAddrPort("127.0.0.1:3")})
	d.handle(now, replayed)
	queuedJoins(d)
	digest, err := wire.AppendDigest(nil, &wire.Digest{Origin: "peer", Seq: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	ownSealer := &announcer{sealer: d.sealer}
	cases := []struct {
		name     string
		datagram []byte
		reason   string
	}{
		{"without keys", newAnnouncer(t, label).datagram(t, peer), "auth"},
		{"another key", newAnnouncer(t, label, mcOtherKey).datagram(t, peer), "auth"},
		{"another label", newAnnouncer(t, "other", mcKey).datagram(t, peer), "label"},
		{"replayed", replayed, "replay"},
		{"not an announcement", good.seal(t, digest), "malformed"},
		{"garbage body", good.seal(t, []byte{byte(wire.FrameAnnounce), 0x94, 0xc1}), "malformed"},
		{"not a frame", []byte("hello"), "malformed"},
		{"oversized", make([]byte, maxAnnounceSize+1), "oversize"},
		{"our name", good.datagram(t, wire.Announce{Node: "me", Addr: peer.Addr}), "name"},
		{"unspecified address", good.datagram(t, wire.Announce{Node: "x", Addr: netip.MustParseAddrPort("0.0.0.0:7946")}), "addr"},
		{"multicast address", good.datagram(t, wire.Announce{Node: "x", Addr: netip.MustParseAddrPort("239.1.1.1:7946")}), "addr"},
		{"broadcast address", good.datagram(t, wire.Announce{Node: "x", Addr: netip.MustParseAddrPort("255.255.255.255:7946")}), "addr"},
		{"IPv6 link-local address", good.datagram(t, wire.Announce{Node: "x", Addr: netip.MustParseAddrPort("[fe80::1]:7946")}), "addr"},
	}
	for _, c := range cases {
		before := d.stats().Dropped[c.reason]
		d.handle(now, c.datagram)
		if got := d.stats().Dropped[c.reason]; got != before+1 {
			t.Errorf("%s: dropped[%q] went from %d to %d, want one more", c.name, c.reason, before, got)
		}
		if q := queuedJoins(d); len(q) > 0 {
			t.Errorf("%s: queued a join of %v", c.name, q)
		}
	}

	// Our own announcement, looped back: ignored.
	d.handle(now, ownSealer.datagram(t, d.self))
	if q := queuedJoins(d); len(q) > 0 {
		t.Errorf("our own announcement queued joins of %v", q)
	}
	if got := d.stats().Ignored; got != 1 {
		t.Errorf("ignored %d, want 1 (our own)", got)
	}

	// A new node is joined once per interval, however often it announces.
	for range 3 {
		d.handle(now, good.datagram(t, peer))
	}
	if q := queuedJoins(d); len(q) != 1 || q[0] != peer.Addr {
		t.Fatalf("queued %v, want one join of %v", q, peer.Addr)
	}
	d.handle(now.Add(d.interval), good.datagram(t, peer))
	if q := queuedJoins(d); len(q) != 1 {
		t.Errorf("after an interval: queued %v, want one more join", q)
	}

	st := d.stats()
	var dropped uint64
	for _, n := range st.Dropped {
		dropped += n
	}
	// handle count: 1 first + cases + 1 ignored + 3 + 1.
	if want := uint64(1 + len(cases) + 1 + 3 + 1); st.Received != want {
		t.Errorf("received %d, want %d", st.Received, want)
	}
	if st.Received != st.Ignored+dropped+3 { // three joins queued
		t.Errorf("counters do not add up: %+v", st)
	}
}

func TestJoinable(t *testing.T) {
	lan, lo := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		ip, self netip.Addr
		want     bool
	}{
		{netip.MustParseAddr("10.0.0.2"), lan, true},
		{netip.MustParseAddr("2001:db8::2"), lan, true},
		{netip.MustParseAddr("169.254.0.2"), lan, true},
		{netip.MustParseAddr("127.0.0.2"), lo, true},
		{netip.MustParseAddr("127.0.0.2"), lan, false},
		{netip.MustParseAddr("::1"), lan, false},
		{netip.MustParseAddr("fe80::2"), lan, false},
		{netip.MustParseAddr("0.0.0.0"), lan, false},
		{netip.MustParseAddr("::"), lan, false},
		{netip.MustParseAddr("224.0.0.1"), lan, false},
		{netip.MustParseAddr("255.255.255.255"), lan, false},
	} {
		if got := joinable(c.ip, c.self); got != c.want {
			t.Errorf("joinable(%v) advertising %v = %v, want %v", c.ip, c.self, got, c.want)
		}
	}
}

// TestAnnouncementRateLimits: over the join rate, or with the join queue
// full, announcements are counted and dropped, never queued without bound.
func TestAnnouncementRateLimits(t *testing.T) {
	const label = "mc"
	_, d := testDiscovery(t, "me", label, mcKey)
	good := newAnnouncer(t, label, mcKey)
	now := time.Now()
	ann := func(i int) []byte {
		return good.datagram(t, wire.Announce{Node: "n", Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(1000+i))})
	}
	for i := range announceJoinBurst + 5 {
		d.handle(now, ann(i))
	}
	if got := d.stats().Dropped["rate"]; got != 5 {
		t.Errorf("dropped %d over the join rate, want 5", got)
	}
	if got := len(queuedJoins(d)); got != announceJoinBurst {
		t.Errorf("queued %d joins, want the burst of %d", got, announceJoinBurst)
	}

	d.joinLimit = rate.NewLimiter(rate.Inf, 0)
	for i := range joinQueueLen + 3 {
		d.handle(now, ann(10_000+i))
	}
	if got := d.stats().Dropped["busy"]; got != 3 {
		t.Errorf("dropped %d with the queue full, want 3", got)
	}
	queuedJoins(d)

	d.readLimit = rate.NewLimiter(rate.Every(time.Hour), 1)
	d.handle(now, ann(20_000))
	d.handle(now, ann(20_001))
	if got := d.stats().Dropped["rate"]; got != 6 {
		t.Errorf("dropped %d over the rates, want 6 (one more over the read rate)", got)
	}
}

// TestAnnouncedNodeIsJoined: a node heard on the group is joined the way
// a seed is, and the two converge.
func TestAnnouncedNodeIsJoined(t *testing.T) {
	const label = "mc"
	a, d := testDiscovery(t, "a", label, mcKey)
	bc := testConfig("b")
	bc.Label, bc.Keyring = label, mcKeyring(t, mcKey)
	b := startNode(t, bc)
	a.wg.Add(1)
	go d.joinLoop() // ends when a closes

	d.handle(time.Now(), newAnnouncer(t, label, mcKey).datagram(t, wire.Announce{Node: "b", Addr: b.Local().Addr}))
	waitConverged(t, []*Membership{a, b}, 15*time.Second)
	st := d.stats()
	if st.Joins != 1 || st.JoinsAnswered != 1 || a.Stats().JoinAttempts != 1 {
		t.Errorf("joins %d (answered %d), membership join attempts %d; want 1 each", st.Joins, st.JoinsAnswered, a.Stats().JoinAttempts)
	}

	// Once b is a member, its announcements need nothing, even after the
	// interval that allows another join.
	d.handle(time.Now().Add(2*d.interval), newAnnouncer(t, label, mcKey).datagram(t, wire.Announce{Node: "b", Addr: b.Local().Addr}))
	if q := queuedJoins(d); len(q) > 0 || d.stats().Ignored != 1 {
		t.Errorf("a member's announcement queued %v, ignored %d; want nothing queued, 1 ignored", q, d.stats().Ignored)
	}
}

// TestNoDiscoveryWithoutGroup: without a Group nothing of it runs.
func TestNoDiscoveryWithoutGroup(t *testing.T) {
	m := startNode(t, testConfig("plain"))
	if st := m.DiscoveryStats(); st.Group != "" || st.Sent != 0 || st.Dropped == nil {
		t.Errorf("stats without a group: %+v", st)
	}
}
