package mesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
	"github.com/warpmesh/warp/wire"
)

// The tests in this file attack a running mesh over real UDP on 127.0.0.1
// from a plain socket, with frames forged by wire's own encoders: they
// check that what fails to open or decode is dropped before any
// subscriber, counted under the right reason, and never stops the node.

// secExpect accumulates the drops a test expects, by reason.
type secExpect map[string]uint64

// TestForgedFramesAreDroppedAndCounted sends a node every kind of bad
// datagram: sealed with a key it lacks, of another cluster label, of an
// unknown version, unsealed while it has keys, truncated at every length,
// with each bit position flipped, and authentic frames whose bodies are
// garbage, truncated or of a type the mesh does not expect. Each is
// counted under the reason wire's Opener and decoders give it, and none
// of the forged events reaches a subscriber.
func TestForgedFramesAreDroppedAndCounted(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	buses := startCluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}}, nil)
	a, b := buses[0], buses[1]
	got := collect(t, b, &wg)
	atk := secAttacker(t)
	good := secSealer(t, secClusterKey, secLabel)
	want := secExpect{}
	sentinels := 0

	// flush sends an authentic event and waits for it: the node has
	// handled every datagram sent before, then its counters must match.
	flush := func(what string) {
		t.Helper()
		sentinels++
		key := fmt.Sprintf("sentinel:%d", sentinels)
		secSend(t, atk, b.Addr(), secSeal(t, good, secEventsBody(t, "sentinel-origin", 1, uint64(sentinels), 0, key)))
		got.WaitKey(t, key, 5*time.Second)
		drops := b.Metrics().DropsByReason
		for reason, n := range want {
			if drops[reason] != n {
				t.Fatalf("after %s: %d drops for %q, want %d (all drops: %v)", what, drops[reason], reason, n, drops)
			}
		}
		for reason, n := range drops {
			if _, ok := want[reason]; !ok && n > 0 {
				t.Fatalf("after %s: unexpected drops for %q: %v", what, reason, drops)
			}
		}
	}
	forged := func(i int) []byte {
		return secEventsBody(t, "intruder", 7, uint64(i+1), 0, fmt.Sprintf("forged:%d", i))
	}

	// Sealed with a key the cluster does not hold.
	wrong := secSealer(t, secOtherKey, secLabel)
	for i := range 20 {
		secSend(t, atk, b.Addr(), secSeal(t, wrong, forged(i)))
	}
	want["auth"] += 20
	flush("frames sealed with another key")

	// Another cluster's label, with the right key.
	other := secSealer(t, secClusterKey, "other-cluster")
	for i := range 20 {
		secSend(t, atk, b.Addr(), secSeal(t, other, forged(i)))
	}
	want["label"] += 20
	flush("frames of another label")

	// Versions this build does not speak.
	for i, v := range []byte{0, 2, 3, 0x7f, 0xff} {
		dg := secSeal(t, good, forged(i))
		dg[1] = v
		secSend(t, atk, b.Addr(), dg)
	}
	want["version"] += 5
	flush("frames of unknown versions")

	// Unsealed frames, refused while keys are installed.
	emptyRing, _ := wire.NewKeyring()
	plain := wire.NewSealer(emptyRing, secLabel)
	for i := range 10 {
		secSend(t, atk, b.Addr(), secSeal(t, plain, forged(i)))
	}
	want["auth"] += 10
	flush("unsealed frames")

	// Truncated at every length: the header and tag checks say malformed,
	// anything long enough to hold a tag fails authentication.
	// (Fresh sealers: their frames' counters were never seen, so no
	// mutilated frame can pass for a replay.)
	full := secSeal(t, secSealer(t, secClusterKey, secLabel), forged(0))
	for n := 1; n < len(full); n++ {
		secSend(t, atk, b.Addr(), full[:n])
		if n < wire.MaxOverhead {
			want["malformed"]++
		} else {
			want["auth"]++
		}
		if n%200 == 0 {
			flush(fmt.Sprintf("truncations up to %d bytes", n))
		}
	}
	flush("truncated frames")

	// Random bytes after a valid-looking header: the cluster's label tag
	// and key ID, a fresh sender and counter; they fail authentication.
	hdr := secSeal(t, secSealer(t, secClusterKey, secLabel), forged(2))[:wire.HeaderSize]
	rnd := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		dg := append([]byte(nil), hdr...)
		for range wire.MaxOverhead - wire.HeaderSize + rnd.IntN(300) {
			dg = append(dg, byte(rnd.Uint32()))
		}
		secSend(t, atk, b.Addr(), dg)
	}
	want["auth"] += 50
	flush("random bodies behind a valid header")

	// One bit flipped at every position but the marker (a datagram that
	// does not start with it belongs to memberlist, not to the mesh).
	base := secSeal(t, secSealer(t, secClusterKey, secLabel), forged(1))
	for i := 1; i < len(base); i++ {
		dg := append([]byte(nil), base...)
		dg[i] ^= 1 << (i % 8)
		secSend(t, atk, b.Addr(), dg)
		switch {
		case i == 1:
			want["version"]++
		case i == 2: // flags: unknown bits, or "unsealed" with a key ID
			want["malformed"]++
		case i >= 3 && i < 7: // the label tag
			want["label"]++
		default: // key ID (unknown), sender, counter, body, tag
			want["auth"]++
		}
		if i%200 == 0 {
			flush(fmt.Sprintf("bit flips up to byte %d", i))
		}
	}
	flush("frames with a flipped bit")

	// Authentic frames (the right key) whose bodies are not frames we
	// accept: an empty body, unknown types, a type the mesh never
	// receives, and truncated or random payloads. What wire's decoders
	// refuse must be counted as malformed; the rest are authentic frames
	// and may be handled.
	rng := rand.New(rand.NewPCG(4, 2))
	bodies := [][]byte{{}, {0}, {0x3f, 1, 2}, {0x7f}, {0x80}, {0x81, 0xff, 0xff, 0xff, 0xff, 0x0f}}
	valid := secEventsBody(t, "intruder", 7, 100, 0, "garbage:valid")
	for n := 1; n < len(valid); n++ {
		bodies = append(bodies, valid[:n])
	}
	for typ := byte(1); typ <= 5; typ++ {
		for range 40 {
			p := make([]byte, 1+rng.IntN(64))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			bodies = append(bodies, append([]byte{typ}, p...))
		}
	}
	for i, body := range bodies {
		secSend(t, atk, b.Addr(), secSeal(t, good, body))
		want[secReasonOf(body, b.Name())]++
		if i%200 == 199 {
			flush(fmt.Sprintf("%d authentic garbage bodies", i+1))
		}
	}
	// A presence frame is valid wire, but the mesh has no use for it.
	presence, err := wire.AppendPresence(nil, &wire.Presence{Node: "intruder", Interval: time.Second}, false)
	if err != nil {
		t.Fatal(err)
	}
	secSend(t, atk, b.Addr(), secSeal(t, good, presence))
	want["unexpected"]++
	delete(want, "") // bodies that decoded count nowhere
	flush("authentic frames with garbage bodies")

	// Not one forged event reached the subscriber, the node still works,
	// and the other node saw none of this.
	for _, r := range got.Events() {
		if strings.HasPrefix(r.Event.Key, "forged:") {
			t.Errorf("forged event %q was delivered", r.Event.Key)
		}
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := a.PublishAndAwait(ctx, "after:attack", 1); err != nil {
		t.Fatalf("PublishAndAwait after the attack: %v", err)
	}
	got.WaitKey(t, "after:attack", 5*time.Second)
	if d := a.Metrics().DropsByReason; len(d) > 0 {
		t.Errorf("node a, not attacked, dropped %v", d)
	}
	secCloseAll(t, buses...)
}

// secReasonOf says how node must count an authentic frame with this body:
// the reason wire gives when it refuses it, "unexpected" for a type the
// mesh never receives, the mesh's reason for acks and repair requests
// about another origin that it cannot use, or "" when it is handled.
func secReasonOf(body []byte, node string) string {
	typ, err := wire.PeekType(body)
	if err != nil {
		return wire.Reason(err)
	}
	switch typ {
	case wire.FrameEvents:
		err = wire.DecodeEvents(body, &wire.Events{})
	case wire.FrameAcks:
		var f wire.Acks
		if err = wire.DecodeAcks(body, &f); err == nil {
			switch f.Origin {
			case node:
				return "stale-ack" // the node's incarnation is random
			case "a", "b":
			default:
				return "ack-for-unknown"
			}
		}
	case wire.FrameRepairRequest:
		var f wire.RepairRequest
		if err = wire.DecodeRepairRequest(body, &f); err == nil && f.Origin != node {
			return "misdirected"
		}
	case wire.FrameUnavailable:
		err = wire.DecodeUnavailable(body, &wire.Unavailable{})
	case wire.FrameDigest:
		err = wire.DecodeDigest(body, &wire.Digest{})
	default:
		return "unexpected"
	}
	return wire.Reason(err)
}

// secSniffer wraps a node's real transport and keeps a copy of every
// data-plane datagram the node sends to one address: the wire as an
// eavesdropper sees it.
type secSniffer struct {
	membership.Transport

	mu     sync.Mutex
	target netip.AddrPort
	seen   [][]byte
}

func newSecSniffer(t testing.TB) *secSniffer {
	t.Helper()
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &secSniffer{Transport: nt}
}

func (s *secSniffer) SendDatagram(addr netip.AddrPort, b []byte) error {
	s.mu.Lock()
	if addr == s.target {
		s.seen = append(s.seen, bytes.Clone(b))
	}
	s.mu.Unlock()
	return s.Transport.SendDatagram(addr, b)
}

// watch starts recording what is sent to addr, forgetting older captures.
func (s *secSniffer) watch(addr netip.AddrPort) {
	s.mu.Lock()
	s.target, s.seen = addr, nil
	s.mu.Unlock()
}

// find returns the first captured datagram whose body, opened with the
// cluster's key, is an Events frame carrying key.
func (s *secSniffer) find(t testing.TB, key string) []byte {
	t.Helper()
	kr, _ := wire.NewKeyring(secClusterKey)
	// An Opener of our own: the sniffer is a separate receiver, with its
	// own replay windows.
	op := wire.NewOpener(kr, secLabel)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dg := range s.seen {
		body, _, err := op.Open(nil, dg)
		if err != nil {
			continue
		}
		var f wire.Events
		if typ, _ := wire.PeekType(body); typ != wire.FrameEvents || wire.DecodeEvents(body, &f) != nil {
			continue
		}
		for _, ev := range f.Events {
			if ev.Key == key {
				return dg
			}
		}
	}
	t.Fatalf("no captured datagram carries %q", key)
	return nil
}

// TestReplayedDatagramsAreDropped replays datagrams, both forged by a key
// holder and captured from the wire, and checks that each is delivered
// once: every copy after the first is a "replay" drop, refused by the
// envelope's replay window before the mesh sees it — also when the copy
// comes after more than a window's worth of newer frames.
func TestReplayedDatagramsAreDropped(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	sniff := newSecSniffer(t)
	nodes := []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}, {Name: "c", Zone: "z"}}
	buses := startCluster(t, nodes, func(i int, o *mesh.MeshOptions) {
		if i == 0 {
			o.Transport = sniff
		}
	})
	a, b, c := buses[0], buses[1], buses[2]
	gotB, gotC := collect(t, b, &wg), collect(t, c, &wg)
	atk := secAttacker(t)
	good := secSealer(t, secClusterKey, secLabel)

	// Forged by a key holder, sent four times.
	dg := secSeal(t, good, secEventsBody(t, "intruder", 9, 1, 0, "replay:forged"))
	secSend(t, atk, b.Addr(), dg, dg, dg, dg)
	sentinel := secSeal(t, good, secEventsBody(t, "intruder", 9, 2, 0, "replay:sentinel1"))
	secSend(t, atk, b.Addr(), sentinel)
	gotB.WaitKey(t, "replay:sentinel1", 5*time.Second)
	if n := gotB.Count("replay:forged"); n != 1 {
		t.Errorf("forged event delivered %d times, want 1", n)
	}
	if n := secDrops(b, "replay"); n != 3 {
		t.Errorf("%d replay drops after 3 copies, want 3 (%v)", n, b.Metrics().DropsByReason)
	}
	if d := b.Metrics().Duplicates; d != 0 {
		t.Errorf("%d duplicates: the copies got past the envelope to the receive window", d)
	}

	// Captured from a's traffic to b: a seals a frame once for all its
	// receivers, so the copy is a replay at b and at c alike. (Counted as
	// differences: a's own frames can be refused as replays under load,
	// which TestBugDelayedFrameRefusedAsReplay shows.)
	sniff.watch(b.Addr())
	ctx := ctxTimeout(t, 20*time.Second)
	if err := a.PublishAndAwait(ctx, "replay:captured", 2); err != nil {
		t.Fatal(err)
	}
	captured := sniff.find(t, "replay:captured")
	beforeB, beforeC := secDrops(b, "replay"), secDrops(c, "replay")
	secSend(t, atk, b.Addr(), captured, captured)
	secSend(t, atk, c.Addr(), captured)
	secSend(t, atk, b.Addr(), secSeal(t, good, secEventsBody(t, "intruder", 9, 3, 0, "replay:sentinel2")))
	secSend(t, atk, c.Addr(), secSeal(t, good, secEventsBody(t, "intruder", 9, 4, 0, "replay:sentinel2")))
	gotB.WaitKey(t, "replay:sentinel2", 5*time.Second)
	gotC.WaitKey(t, "replay:sentinel2", 5*time.Second)
	if n := secDrops(b, "replay") - beforeB; n != 2 {
		t.Errorf("b: %d replay drops for 2 copies of a captured datagram (%v)", n, b.Metrics().DropsByReason)
	}
	if n := secDrops(c, "replay") - beforeC; n != 1 {
		t.Errorf("c: %d replay drops for 1 copy of a captured datagram (%v)", n, c.Metrics().DropsByReason)
	}

	// Past the replay window: a sends b more than 1024 newer frames, then
	// the old capture comes back. It is older than the window, so refused
	// as a replay, not taken for a frame never seen.
	for i := range 1100 {
		if err := a.PublishAndAwait(ctx, fmt.Sprintf("replay:later:%d", i), 2); err != nil {
			t.Fatalf("PublishAndAwait %d: %v", i, err)
		}
	}
	beforeB = secDrops(b, "replay")
	secSend(t, atk, b.Addr(), captured)
	secSend(t, atk, b.Addr(), secSeal(t, good, secEventsBody(t, "intruder", 9, 5, 0, "replay:sentinel3")))
	gotB.WaitKey(t, "replay:sentinel3", 5*time.Second)
	if n := secDrops(b, "replay") - beforeB; n != 1 {
		t.Errorf("b: %d replay drops for a capture older than the window, want 1 (%v)", n, b.Metrics().DropsByReason)
	}
	for _, got := range []*warptest.Collector{gotB, gotC} {
		if n := got.Count("replay:captured"); n != 1 {
			t.Errorf("captured event delivered %d times, want 1", n)
		}
	}
	secCloseAll(t, buses...)
}

// TestForgedAcksCannotSatisfyQuorum holds an awaiting publish pending (its
// only receivers are muted) and acknowledges it with forged frames: sealed
// with a key the cluster lacks, unsealed, and — sealed with the right key —
// naming a node that is not a member, a member that failed, the publisher
// itself, and members with an incarnation the event was not sent to. None
// counts; the call fails at its deadline with the
// figures. The same frame naming the muted members does satisfy a second
// call, which shows the forgeries were well-formed and well-aimed: only
// their content made them worthless.
func TestForgedAcksCannotSatisfyQuorum(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	nodes := []bustest.Node{{Name: "a", Zone: "z1"}, {Name: "b", Zone: "z1"}, {Name: "c", Zone: "z2"}, {Name: "d", Zone: "z2"}}
	buses := startCluster(t, nodes, nil)
	a, b, c, d := buses[0], buses[1], buses[2], buses[3]
	atk := secAttacker(t)
	good := secSealer(t, secClusterKey, secLabel)
	boot := secBoot(a)
	seqs := secSeqs(64) // a has numbered no event yet: its awaits are 1, 2, ...

	// d crashes: its sockets close under it, and a sees it fail.
	if err := d.Membership().Transport().Shutdown(); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, 15*time.Second, func() bool {
		for _, m := range a.Members() {
			if m.Name == "d" {
				return m.State == syncbus.MemberFailed
			}
		}
		return false
	}, "%s", "a to see d failed")
	b.SetMuted(true)
	c.SetMuted(true)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending := secAwait(ctx, a, "acks:forged", 1)
	warptest.Eventually(t, 5*time.Second, func() bool { return a.Health().PendingAwaits == 1 }, "%s", "the await to be pending")

	// Without the key.
	for _, s := range []*wire.Sealer{secSealer(t, secOtherKey, secLabel), wire.NewSealer(nil, secLabel)} {
		for range 5 {
			secSend(t, atk, a.Addr(), secSeal(t, s, secAcksBody(t, "a", boot, seqs, secAs(b), secAs(c))))
		}
	}
	// With the key, naming nodes whose word does not count: one that is
	// not a member, one that failed, the publisher itself, and live
	// members claiming incarnations the event was never sent to.
	ghost := secAcker{"ghost", 1}
	stale := []secAcker{{"b", secBoot(b) + 1}, {"c", 0}}
	secSend(t, atk, a.Addr(),
		secSeal(t, good, secAcksBody(t, "a", boot, seqs, ghost)),
		secSeal(t, good, secAcksBody(t, "a", boot, seqs, secAs(d))),
		secSeal(t, good, secAcksBody(t, "a", boot, seqs, secAs(a))),
		secSeal(t, good, secAcksBody(t, "a", boot, seqs, ghost, secAs(d), secAs(a))),
		secSeal(t, good, secAcksBody(t, "a", boot, seqs, stale...)),
	)
	// A last frame for another incarnation of a is refused and counted:
	// once it is, every frame before it has been handled.
	secSend(t, atk, a.Addr(), secSeal(t, good, secAcksBody(t, "a", boot+1, seqs, secAs(b))))
	warptest.Eventually(t, 5*time.Second, func() bool { return secDrops(a, "stale-ack") == 1 }, "%s", "the forged acks to be handled")
	if n := secDrops(a, "auth"); n != 10 {
		t.Errorf("%d auth drops for 10 acks frames without the key, want 10", n)
	}
	if n := a.Metrics().AcksReceived; n != 0 {
		t.Errorf("%d forged acks counted", n)
	}

	err := secResult(t, pending, 10*time.Second)
	qe := secQuorumError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want the deadline as its cause", err)
	}
	if qe.FailFast || qe.Required != 1 || len(qe.AckedNodes) != 0 {
		t.Errorf("quorum error %+v: want a wait for 1 replica that no node acknowledged", qe)
	}

	// Control: the same forgery naming the muted, alive members counts
	// (a key holder is trusted, as relays forward their peers' acks).
	ctx2 := ctxTimeout(t, 10*time.Second)
	var report syncbus.AckReport
	control := secAwait(ctx2, a, "acks:control", 2, syncbus.WithAckReport(&report))
	warptest.Eventually(t, 5*time.Second, func() bool { return a.Health().PendingAwaits == 1 }, "%s", "the control await to be pending")
	secSend(t, atk, a.Addr(), secSeal(t, good, secAcksBody(t, "a", boot, seqs, secAs(b), secAs(c))))
	if err := secResult(t, control, 10*time.Second); err != nil {
		t.Fatalf("control await: %v", err)
	}
	if strings.Join(report.Nodes, ",") != "b,c" {
		t.Errorf("control await acked by %v, want b and c", report.Nodes)
	}
	secCloseAll(t, buses...)
}

// TestOutsidersStayOut starts a node with a key the cluster does not hold,
// and one of another cluster label, each seeded with a cluster member.
// Their joins keep failing, no member ever lists them, they list nobody,
// and they receive none of the cluster's events.
func TestOutsidersStayOut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   []byte
		label string
	}{
		{"wrong key", secOtherKey, secLabel},
		{"wrong label", secClusterKey, "other-cluster"},
		{"no key", nil, secLabel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			secLeakCheck(t, &wg)
			buses := startCluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}}, nil)
			o := mesh.MeshOptions{
				NodeName: "outsider", BindAddr: "127.0.0.1", Port: -1, Zone: "z",
				Profile: "local", Label: tc.label, Peers: []string{buses[0].Addr().String()},
			}
			if tc.key != nil {
				o.SecretKeys = [][]byte{tc.key}
			}
			mesh.FastMembership(&o)
			x, err := mesh.NewMeshBus(o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = x.Close() })
			gotX := collect(t, x, &wg)
			gotB := collect(t, buses[1], &wg)

			warptest.Eventually(t, 15*time.Second, func() bool {
				s := x.Membership().Stats()
				return s.JoinFailures >= 2
			}, "%s", "the outsider's joins to fail twice")
			ctx := ctxTimeout(t, 10*time.Second)
			if err := buses[0].PublishAndAwait(ctx, "outsiders:1", 1); err != nil {
				t.Fatal(err)
			}
			if err := x.Publish(ctx, "outsiders:2"); err != nil {
				t.Fatal(err)
			}
			// The outsider's own event reaches its own subscriber only.
			gotX.WaitKey(t, "outsiders:2", 5*time.Second)
			for _, b := range buses {
				for _, m := range b.Members() {
					if m.Name == "outsider" {
						t.Errorf("%s lists the outsider: %+v", b.Name(), m)
					}
				}
			}
			if ms := x.Members(); len(ms) != 1 {
				t.Errorf("the outsider lists %v", ms)
			}
			// Fail fast: it knows no other node to ask.
			if err := x.PublishAndAwait(ctx, "outsiders:3", 1); !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
				t.Errorf("outsider's PublishAndAwait: %v, want a quorum failure", err)
			}
			secCloseAll(t, append(buses, x)...)
			if n := gotX.Count("outsiders:1"); n != 0 {
				t.Errorf("the outsider received the cluster's event %d times", n)
			}
			if n := gotB.Count("outsiders:2"); n != 0 {
				t.Errorf("the cluster received the outsider's event %d times", n)
			}
		})
	}
}

// secGossipRounds waits until every bus has received n more memberlist
// packets: the membership has been exercised under the current keys.
func secGossipRounds(t *testing.T, buses []*mesh.MeshBus, n uint64, what string) {
	t.Helper()
	base := make([]uint64, len(buses))
	for i, b := range buses {
		base[i] = b.Membership().Transport().(*membership.NetTransport).Stats().PacketsReceived
	}
	warptest.Eventually(t, 10*time.Second, func() bool {
		for i, b := range buses {
			if b.Membership().Transport().(*membership.NetTransport).Stats().PacketsReceived < base[i]+n {
				return false
			}
		}
		return true
	}, "%s", "gossip "+what)
}

// TestKeyRotationWhileRunning rotates the cluster key while events flow:
// the new key is added on every node, made primary on every node, and the
// old one removed from every node, one node at a time. A publisher runs
// throughout, from every node in turn, and every event it published is
// delivered on every node; its awaiting publishes all succeed; no node
// ever suspects another. Afterwards the old key opens nothing.
func TestKeyRotationWhileRunning(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	nodes := []bustest.Node{{Name: "a", Zone: "z1"}, {Name: "b", Zone: "z1"}, {Name: "c", Zone: "z2"}}
	buses := startCluster(t, nodes, nil)
	watches := secWatchAll(buses, &wg)
	got := make([]*warptest.Collector, len(buses))
	for i, b := range buses {
		got[i] = collect(t, b, &wg)
	}
	newKey := []byte("rotated-key-0123rotated-key-0123")

	var (
		published atomic.Int64
		stop      = make(chan struct{})
		pubDone   = make(chan struct{})
		pubErrs   []error
	)
	go func() {
		defer close(pubDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b, key := buses[i%len(buses)], fmt.Sprintf("rot:%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var err error
			if i%4 == 0 {
				err = b.PublishAndAwait(ctx, key, len(buses)-1)
			} else {
				err = b.Publish(ctx, key)
			}
			cancel()
			if err != nil {
				pubErrs = append(pubErrs, fmt.Errorf("%s %s: %w", b.Name(), key, err))
			}
			published.Add(1)
		}
	}()
	// progress waits until the publisher has published n more events.
	progress := func(what string, n int64) {
		t.Helper()
		target := published.Load() + n
		warptest.Eventually(t, 20*time.Second, func() bool { return published.Load() >= target }, "%s", "events to flow "+what)
	}

	progress("before the rotation", 50)
	steps := []struct {
		name string
		do   func(*mesh.MeshBus) error
	}{
		{"adding the new key", func(b *mesh.MeshBus) error { return b.AddKey(newKey) }},
		{"making it primary", func(b *mesh.MeshBus) error { return b.UseKey(newKey) }},
		{"removing the old key", func(b *mesh.MeshBus) error { return b.RemoveKey(secClusterKey) }},
	}
	for _, step := range steps {
		for _, b := range buses {
			if err := step.do(b); err != nil {
				t.Fatalf("%s on %s: %v", step.name, b.Name(), err)
			}
			progress("while "+step.name, 20)
		}
		progress("after "+step.name, 100)
		secGossipRounds(t, buses, 10, "after "+step.name)
	}
	close(stop)
	<-pubDone
	t.Logf("%d events published during the rotation", published.Load())
	for _, err := range pubErrs {
		t.Errorf("publishing during the rotation: %v", err)
	}
	n := int(published.Load())
	for i, g := range got {
		// The publisher ran flat out: on a loaded machine repairing what the
		// receivers' queues dropped takes a while.
		if !warptest.WaitFor(30*time.Second, func() bool { return g.Distinct() >= n }) {
			m := buses[i].Metrics()
			t.Fatalf("%s received %d of %d events within 30s; resyncs %d, repair requests %d, duplicates %d, drops %v, transport %+v",
				buses[i].Name(), g.Distinct(), n, m.Resyncs, m.RepairRequests, m.Duplicates, m.DropsByReason,
				buses[i].Membership().Transport().(*membership.NetTransport).Stats())
		}
		for k := range n {
			if g.Count(fmt.Sprintf("rot:%d", k)) != 1 {
				t.Errorf("%s received rot:%d %d times", buses[i].Name(), k, g.Count(fmt.Sprintf("rot:%d", k)))
			}
		}
		if r := g.Resyncs(); r != 0 {
			t.Errorf("%s got %d resyncs: it thought it lost events", buses[i].Name(), r)
		}
	}
	secCheckHealthy(t, buses, watches, len(buses), "during the rotation")

	// The old key opens nothing now; the new one does.
	atk := secAttacker(t)
	b := buses[1]
	before := secDrops(b, "auth")
	secSend(t, atk, b.Addr(), secSeal(t, secSealer(t, secClusterKey, secLabel), secEventsBody(t, "intruder", 3, 1, 0, "rot:old-key")))
	secSend(t, atk, b.Addr(), secSeal(t, secSealer(t, newKey, secLabel), secEventsBody(t, "intruder", 3, 2, 0, "rot:new-key")))
	got[1].WaitKey(t, "rot:new-key", 5*time.Second)
	if got[1].Count("rot:old-key") != 0 || secDrops(b, "auth") != before+1 {
		t.Errorf("a frame sealed with the removed key was not refused: delivered %d times, auth drops %d -> %d",
			got[1].Count("rot:old-key"), before, secDrops(b, "auth"))
	}
	secCloseAll(t, buses...)
}
