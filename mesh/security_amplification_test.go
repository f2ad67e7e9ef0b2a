package mesh_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus/bustest"
	"github.com/warpmesh/warp/wire"
)

// The test of this file checks that a node with keys is no reflector: no
// datagram from someone without a key makes it send anything, to the
// datagram's source or anywhere else. UDP sources can be spoofed, so a
// node that answered unauthenticated datagrams could be made to send its
// answers to a victim; a node that never answers them cannot.

// secRecorder wraps a node's transport and counts everything the node
// sends: memberlist's packets, the data plane's datagrams and the streams
// it opens, with their destinations.
type secRecorder struct {
	membership.Transport

	mu    sync.Mutex
	sends []string // "kind to address", in order
}

func (r *secRecorder) note(kind, addr string) {
	r.mu.Lock()
	r.sends = append(r.sends, kind+" to "+addr)
	r.mu.Unlock()
}

func (r *secRecorder) WriteTo(b []byte, addr string) (time.Time, error) {
	r.note(fmt.Sprintf("memberlist packet of %d bytes", len(b)), addr)
	return r.Transport.WriteTo(b, addr)
}

func (r *secRecorder) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	r.note(fmt.Sprintf("memberlist packet of %d bytes", len(b)), a.Addr)
	return r.Transport.WriteToAddress(b, a)
}

func (r *secRecorder) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	r.note("memberlist stream", addr)
	return r.Transport.DialTimeout(addr, d)
}

func (r *secRecorder) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	r.note("memberlist stream", a.Addr)
	return r.Transport.DialAddressTimeout(a, d)
}

func (r *secRecorder) SendDatagram(addr netip.AddrPort, b []byte) error {
	r.note(fmt.Sprintf("data datagram of %d bytes", len(b)), addr.String())
	return r.Transport.SendDatagram(addr, b)
}

func (r *secRecorder) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sends...)
}

// secLineCounter is a slog.Handler that counts the lines of memberlist
// itself ("memberlist: ..."), which it writes for every packet it refuses
// (at a bounded rate).
type secLineCounter struct{ memberlist atomic.Int64 }

// Enabled keeps memberlist's debug lines from spending the rate limit
// its refusals (errors and warnings) are counted by.
func (h *secLineCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *secLineCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "memberlist: ") {
		h.memberlist.Add(1)
	}
	return nil
}
func (h *secLineCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *secLineCounter) WithGroup(string) slog.Handler      { return h }

// secMsgpack appends msgpack values the way memberlist's codec writes its
// messages: a map of field names to values.
type secMsgpack []byte

func (m secMsgpack) mapOf(n int) secMsgpack { return append(m, 0x80|byte(n)) }
func (m secMsgpack) str(s string) secMsgpack {
	return append(append(m, 0xd9, byte(len(s))), s...)
}
func (m secMsgpack) u32(v uint32) secMsgpack {
	return binary.BigEndian.AppendUint32(append(m, 0xce), v)
}
func (m secMsgpack) u16(v uint16) secMsgpack {
	return binary.BigEndian.AppendUint16(append(m, 0xcd), v)
}
func (m secMsgpack) boolean(v bool) secMsgpack {
	if v {
		return append(m, 0xc3)
	}
	return append(m, 0xc2)
}

// Memberlist's message types and its label header's marker (memberlist's
// net.go): part of its wire format.
const (
	mlPing         = 0
	mlIndirectPing = 1
	mlCompound     = 7
	mlLabel        = 244
)

// secPing is memberlist's ping to node, asking for the ack to go to
// replyTo.
func secPing(node string, replyTo netip.AddrPort) []byte {
	ip := replyTo.Addr().As4()
	m := secMsgpack{mlPing}.mapOf(5).
		str("SeqNo").u32(rand.Uint32()).str("Node").str(node).
		str("SourceAddr").str(string(ip[:])).str("SourcePort").u16(replyTo.Port()).
		str("SourceNode").str("outsider")
	return m
}

// secIndirectPing is memberlist's request that node probe target and
// report (with a nack, too) to replyTo.
func secIndirectPing(node string, target, replyTo netip.AddrPort) []byte {
	tip, rip := target.Addr().As4(), replyTo.Addr().As4()
	m := secMsgpack{mlIndirectPing}.mapOf(8).
		str("SeqNo").u32(rand.Uint32()).str("Target").str(string(tip[:])).str("Port").u16(target.Port()).
		str("Node").str("target").str("Nack").boolean(true).
		str("SourceAddr").str(string(rip[:])).str("SourcePort").u16(replyTo.Port()).
		str("SourceNode").str("outsider")
	return m
}

// secCompound packs messages into memberlist's compound message.
func secCompound(msgs ...[]byte) []byte {
	out := []byte{mlCompound, byte(len(msgs))}
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
	}
	for _, m := range msgs {
		out = append(out, m...)
	}
	return out
}

// secLabelled prefixes a memberlist packet with its label header.
func secLabelled(label string, pkt []byte) []byte {
	return append([]byte{mlLabel, byte(len(label))}, append([]byte(label), pkt...)...)
}

// secMemberlistSeal encrypts a memberlist packet as memberlist does
// (encryption version 1: AES-GCM, a random 12-byte nonce, the label as
// additional data) under key, and labels it.
func secMemberlistSeal(t testing.TB, key []byte, label string, pkt []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, gcm.NonceSize())
	for i := range nonce {
		nonce[i] = byte(rand.Uint32())
	}
	out := append([]byte{1}, nonce...)
	out = gcm.Seal(out, nonce, pkt, []byte(label))
	return secLabelled(label, out)
}

// TestNoAmplificationWithKeys sends a node with keys, alone in its
// cluster so that it has nothing of its own to send, every kind of
// datagram an outsider can make: garbage for either plane; our frames
// (events, repair requests, digests, acks, announcements) sealed with
// another key, unsealed, or of another label; memberlist's ping, indirect
// ping and compound messages unsealed (with and without the label), and
// sealed with a key the cluster does not hold. The pings ask for their
// answer at the outsider's own socket; the indirect ping asks the node to
// probe a third socket and report to the outsider.
//
// For each kind (a sub-test), once the node has refused every datagram
// (its drop counters, or memberlist's log lines, say so), the outsider's
// socket and the third socket receive nothing within a second, and the
// node's transport has sent nothing at all — no packet, datagram or
// stream, to any address. A node that sends nothing in answer to an
// unauthenticated datagram cannot be turned against a spoofed source
// either: there is no answer to redirect.
func TestNoAmplificationWithKeys(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	rec := &secRecorder{}
	lines := &secLineCounter{}
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	rec.Transport = nt
	buses := startCluster(t, []bustest.Node{{Name: "x", Zone: "z"}}, func(_ int, o *mesh.MeshOptions) {
		o.Transport = rec
		o.Logger = slog.New(lines)
	})
	x := buses[0]
	outsider, third := secAttacker(t), secAttacker(t)
	outAddr := outsider.LocalAddr().(*net.UDPAddr).AddrPort()
	thirdAddr := third.LocalAddr().(*net.UDPAddr).AddrPort()
	if sent := rec.recorded(); len(sent) > 0 {
		t.Fatalf("the lone node sent %v before any attack", sent)
	}

	frames := map[string][]byte{
		"events":         secEventsBody(t, "intruder", 7, 1, 0, "amp:forged"),
		"repair request": mustBody(wire.AppendRepairRequest(nil, &wire.RepairRequest{Origin: "x", Boot: secBoot(x), Ranges: []wire.SeqRange{{From: 1, To: 1 << 20}}}, false)),
		"digest":         mustBody(wire.AppendDigest(nil, &wire.Digest{Origin: "intruder", Boot: 7, Seq: 1 << 20, Start: 1, Blocked: true}, false)),
		"acks":           secAcksBody(t, "x", secBoot(x), secSeqs(8), secAcker{"intruder", 1}),
		"announce":       mustBody(wire.AppendAnnounce(nil, &wire.Announce{Node: "intruder", Addr: outAddr, Zone: "z"}, false)),
	}
	sealers := map[string]*wire.Sealer{
		"sealed with another key": secSealer(t, secOtherKey, secLabel),
		"unsealed":                wire.NewSealer(nil, secLabel),
		"of another label":        secSealer(t, secOtherKey, "other-cluster"),
	}
	wrongKey := wire.DeriveKey(secOtherKey, "warp memberlist v1")
	ping := secPing("x", outAddr)
	indirect := secIndirectPing("x", thirdAddr, outAddr)
	rng := rand.New(rand.NewPCG(2, 3))
	garbage := func(marker bool) [][]byte {
		var out [][]byte
		for range 8 { // memberlist's log allows a burst of 20 lines
			dg := make([]byte, 1+rng.IntN(1400))
			for i := range dg {
				dg[i] = byte(rng.Uint32())
			}
			if marker {
				dg[0] = wire.Marker
			} else if dg[0] == wire.Marker || dg[0] == mlLabel {
				dg[0] = 0xff // memberlist's, and refused before its label check
			}
			out = append(out, dg)
		}
		return out
	}

	type kind struct {
		name string
		dgs  [][]byte
		// memberlist says whether the datagrams are memberlist's to
		// refuse (each refusal is a log line) rather than the mesh's
		// (each a counted drop).
		memberlist bool
	}
	kinds := []kind{
		{name: "garbage for memberlist", dgs: garbage(false), memberlist: true},
		{name: "garbage for the mesh", dgs: garbage(true)},
	}
	for _, sname := range []string{"sealed with another key", "unsealed", "of another label"} {
		for _, fname := range []string{"events", "repair request", "digest", "acks", "announce"} {
			var dgs [][]byte
			for range 4 {
				dgs = append(dgs, secSeal(t, sealers[sname], frames[fname]))
			}
			kinds = append(kinds, kind{name: fname + " " + sname, dgs: dgs})
		}
	}
	kinds = append(kinds,
		kind{name: "memberlist ping unsealed", dgs: [][]byte{secLabelled(secLabel, ping), secLabelled(secLabel, ping)}, memberlist: true},
		kind{name: "memberlist ping unlabelled", dgs: [][]byte{ping, ping}, memberlist: true},
		kind{name: "memberlist ping sealed with another key", dgs: [][]byte{
			secMemberlistSeal(t, wrongKey, secLabel, ping), secMemberlistSeal(t, wrongKey, secLabel, ping)}, memberlist: true},
		kind{name: "memberlist indirect ping unsealed", dgs: [][]byte{secLabelled(secLabel, indirect), indirect}, memberlist: true},
		kind{name: "memberlist compound unsealed", dgs: [][]byte{secLabelled(secLabel, secCompound(ping, indirect, ping))}, memberlist: true},
	)

	total := 0
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			drops0 := secDropTotal(x)
			lines0 := lines.memberlist.Load()
			secSend(t, outsider, x.Addr(), k.dgs...)
			total += len(k.dgs)
			if k.memberlist {
				warptest.Eventually(t, 5*time.Second, func() bool {
					return lines.memberlist.Load() >= lines0+int64(len(k.dgs))
				}, "memberlist to refuse %d packets", len(k.dgs))
			} else {
				warptest.Eventually(t, 5*time.Second, func() bool {
					return secDropTotal(x) == drops0+uint64(len(k.dgs))
				}, "the mesh to refuse %d datagrams", len(k.dgs))
			}
			// An answer would have been sent as the datagram was handled.
			for _, c := range []*net.UDPConn{outsider, third} {
				if n := secReplies(t, c, 20*time.Millisecond); n > 0 {
					t.Errorf("%d datagrams came back to %v", n, c.LocalAddr())
				}
			}
			if sent := rec.recorded(); len(sent) > 0 {
				t.Errorf("the node sent %d things: %v", len(sent), sent)
			}
		})
	}
	// And nothing came late.
	for _, c := range []*net.UDPConn{outsider, third} {
		if n := secReplies(t, c, time.Second/2); n > 0 {
			t.Errorf("%d datagrams came back to %v after the attack", n, c.LocalAddr())
		}
	}
	if sent := rec.recorded(); len(sent) > 0 {
		t.Errorf("the node sent %d things: %v", len(sent), sent)
	}
	t.Logf("%d datagrams of %d kinds sent; the node sent %d in answer", total, len(kinds), len(rec.recorded()))
	secCloseAll(t, buses...)
}

// secWireTap wraps a node's transport and keeps a copy of everything it sends
// to one address while on: memberlist's packets and the data plane's
// datagrams, as they cross the wire (sealed).
type secWireTap struct {
	membership.Transport

	mu   sync.Mutex
	to   string
	on   bool
	pkts [][]byte
}

func (c *secWireTap) keep(addr string, b []byte) {
	c.mu.Lock()
	if c.on && addr == c.to {
		c.pkts = append(c.pkts, append([]byte(nil), b...))
	}
	c.mu.Unlock()
}

func (c *secWireTap) WriteTo(b []byte, addr string) (time.Time, error) {
	c.keep(addr, b)
	return c.Transport.WriteTo(b, addr)
}

func (c *secWireTap) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.keep(a.Addr, b)
	return c.Transport.WriteToAddress(b, a)
}

func (c *secWireTap) SendDatagram(addr netip.AddrPort, b []byte) error {
	c.keep(addr.String(), b)
	return c.Transport.SendDatagram(addr, b)
}

// TestReplayedTrafficIsNeverAnsweredToTheReplayer captures what node y
// sends node x for a while — memberlist's probes and gossip, and data
// frames — and has an outsider replay all of it to x. Our frames are
// refused as replays; memberlist, which has no replay window, may answer
// a replayed probe, but only to the member named inside the sealed
// packet. So the outsider's socket receives nothing, and everything x
// sends meanwhile goes to y, the only other member: a replay cannot
// direct an answer at an address of the attacker's choosing. How much x
// sent to y in the replay's wake, against as long a quiet spell before,
// is logged.
func TestReplayedTrafficIsNeverAnsweredToTheReplayer(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	rec, tap := &secRecorder{}, &secWireTap{}
	for _, tr := range []*membership.Transport{&rec.Transport, &tap.Transport} {
		nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
		if err != nil {
			t.Fatal(err)
		}
		*tr = nt
	}
	buses := startCluster(t, []bustest.Node{{Name: "x", Zone: "z"}, {Name: "y", Zone: "z"}}, func(i int, o *mesh.MeshOptions) {
		if i == 0 {
			o.Transport = rec
		} else {
			o.Transport = tap
		}
	})
	x, y := buses[0], buses[1]
	got := collect(t, x, &wg)
	tap.mu.Lock()
	tap.to, tap.on = x.Addr().String(), true
	tap.mu.Unlock()
	// Capture until y has sent x ten memberlist packets (probes, every
	// 100ms here) and events.
	ctx := ctxTimeout(t, 20*time.Second)
	for i := 0; ; i++ {
		if err := y.Publish(ctx, fmt.Sprintf("replay:%d", i)); err != nil {
			t.Fatal(err)
		}
		got.WaitKey(t, fmt.Sprintf("replay:%d", i), 5*time.Second)
		tap.mu.Lock()
		gossip := 0
		for _, p := range tap.pkts {
			if !wire.IsFrame(p) {
				gossip++
			}
		}
		tap.on = gossip < 10
		captured := append([][]byte(nil), tap.pkts...)
		tap.mu.Unlock()
		if tap.on {
			continue
		}

		outsider := secAttacker(t)
		window := 300 * time.Millisecond
		before := len(rec.recorded())
		if n := secReplies(t, outsider, window); n != 0 { // a quiet spell: the baseline
			t.Fatalf("%d datagrams reached an outsider that sent nothing", n)
		}
		mid := len(rec.recorded())
		frames := 0
		replays0 := secDrops(x, "replay")
		for _, p := range captured {
			if wire.IsFrame(p) {
				frames++
			}
		}
		secSend(t, outsider, x.Addr(), captured...)
		warptest.Eventually(t, 5*time.Second, func() bool { return secDrops(x, "replay") == replays0+uint64(frames) },
			"x to refuse the %d replayed frames", frames)
		if n := secReplies(t, outsider, window); n != 0 {
			t.Errorf("%d datagrams came back to the replayer", n)
		}
		sent := rec.recorded()
		for _, s := range sent[before:] {
			if !strings.HasSuffix(s, " to "+y.Addr().String()) {
				t.Errorf("x sent %s: not to the only other member", s)
			}
		}
		t.Logf("replayed %d captured datagrams (%d frames, %d memberlist packets): x sent y %d things in the %v after, %d in the %v before",
			len(captured), frames, len(captured)-frames, len(sent)-mid, window, mid-before, window)
		break
	}
	if n := got.Count("replay:0"); n != 1 {
		t.Errorf("x delivered replay:0 %d times, want once", n)
	}
	secCloseAll(t, buses...)
}

// TestKeylessNodeAnswersAnyone is the control of
// TestNoAmplificationWithKeys, and the price of running without keys: a
// node without keys warns so when it starts, and the same unsealed
// memberlist ping, sent to it, is answered — with one ack, to the address
// the ping names, whoever sent it. (So the ping above is well-formed, and the test sees answers.) The
// figures of what else an outsider's unsealed frames make such a node
// send are logged, for SECURITY.md.
func TestKeylessNodeAnswersAnyone(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	rec := &secRecorder{}
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	rec.Transport = nt
	logs := &secLogRecorder{}
	buses := startCluster(t, []bustest.Node{{Name: "x", Zone: "z"}}, func(_ int, o *mesh.MeshOptions) {
		o.Transport = rec
		o.SecretKeys = nil
		o.Logger = slog.New(logs)
	})
	x := buses[0]
	// The node says what it is running without.
	if w := logs.meshWarnings(); len(w) == 0 || !strings.Contains(w[0].Message, "no SecretKeys") {
		t.Errorf("a node without keys logged %v at start, want a warning that it authenticates nothing", w)
	}
	outsider, victim := secAttacker(t), secAttacker(t)
	victimAddr := victim.LocalAddr().(*net.UDPAddr).AddrPort()

	ping := secLabelled(secLabel, secPing("x", victimAddr))
	secSend(t, outsider, x.Addr(), ping)
	var got int
	warptest.Eventually(t, 5*time.Second, func() bool {
		got += secReplies(t, victim, 10*time.Millisecond)
		return got > 0
	}, "%s", "the keyless node to answer the ping")
	got += secReplies(t, victim, 200*time.Millisecond)
	if got != 1 {
		t.Errorf("%d answers to one ping, want 1", got)
	}
	if n := secReplies(t, outsider, 20*time.Millisecond); n != 0 {
		t.Errorf("%d answers went to the ping's sender, want them at the address it named", n)
	}
	t.Logf("a %d-byte unsealed ping from one address made the keyless node send %v", len(ping), rec.recorded())

	// An unsealed repair request for everything x published, from an
	// address x does not know.
	for i := range 100 {
		if err := x.Publish(ctxTimeout(t, 5*time.Second), fmt.Sprintf("keyless:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	warptest.Eventually(t, 5*time.Second, x.BatcherIdle, "%s", "x to number its events")
	before := len(rec.recorded())
	req := secSeal(t, wire.NewSealer(nil, secLabel), mustBody(wire.AppendRepairRequest(nil,
		&wire.RepairRequest{Origin: "x", Boot: secBoot(x), Ranges: []wire.SeqRange{{From: 1, To: 1 << 20}}}, false)))
	secSend(t, outsider, x.Addr(), req)
	answers := secReplies(t, outsider, 500*time.Millisecond)
	t.Logf("a %d-byte unsealed repair request made the keyless node send %d datagrams back and %v in all",
		len(req), answers, rec.recorded()[before:])
	secCloseAll(t, buses...)
}

func mustBody(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// secDropTotal returns the sum of b's drop counters.
func secDropTotal(b *mesh.MeshBus) uint64 {
	var n uint64
	for _, d := range b.Metrics().DropsByReason {
		n += d
	}
	return n
}

// secReplies counts the datagrams c receives within d.
func secReplies(t testing.TB, c *net.UDPConn, d time.Duration) int {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1<<16)
	n := 0
	for {
		_, _, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			n++
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n
		}
		t.Fatalf("reading %v: %v", c.LocalAddr(), err)
	}
}
