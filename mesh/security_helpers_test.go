package mesh_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/membership/membershiptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// This file holds the attacker's tools of the security and abuse tests: a
// plain UDP socket, frames crafted with wire's own encoders and sealed
// with keys of our choosing, and watchers that record what the buses
// deliver and what their memberships report.

// secClusterKey and secLabel are what startCluster gives every node.
var secClusterKey = []byte("0123456789abcdef0123456789abcdef")

const secLabel = "test"

// secOtherKey is a key of the right size that the cluster does not hold.
var secOtherKey = []byte("fedcba9876543210fedcba9876543210")

// secLeakCheck snapshots the goroutines running now and registers a
// cleanup that, once the test's buses are closed, checks that none of
// theirs is left. Call it before startCluster: cleanups run last-in
// first-out, so the cluster is closed before the check runs.
func secLeakCheck(t *testing.T, also ...*sync.WaitGroup) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, membershiptest.LeakOptions()...)
	t.Cleanup(func() {
		for _, wg := range also {
			wg.Wait() // watchers end when their bus closes
		}
		if err := goleak.Find(opts...); err != nil {
			t.Errorf("goroutines left after Close: %v", err)
		}
	})
}

// secCloseAll closes buses now (startCluster's cleanup closes them again,
// which is a no-op) and fails on an error.
func secCloseAll(t *testing.T, buses ...*mesh.MeshBus) {
	t.Helper()
	for _, b := range buses {
		if err := b.Close(); err != nil {
			t.Errorf("%s: Close: %v", b.Name(), err)
		}
	}
}

// secAttacker returns a plain UDP socket on 127.0.0.1: the attacker's.
func secAttacker(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// secSend writes each datagram to addr.
func secSend(t testing.TB, c *net.UDPConn, to netip.AddrPort, dgs ...[]byte) {
	t.Helper()
	for _, dg := range dgs {
		if _, err := c.WriteToUDPAddrPort(dg, to); err != nil {
			t.Fatalf("send to %v: %v", to, err)
		}
	}
}

// secSealer returns a sealer for label with key as its only key.
func secSealer(t testing.TB, key []byte, label string) *wire.Sealer {
	t.Helper()
	kr, err := wire.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewSealer(kr, label)
}

// secIDs numbers the events the tests forge.
var secIDs = syncbus.NewIDGenerator()

// secEventsBody encodes an Events frame body from origin (incarnation boot)
// carrying one invalidation per key, numbered from seq.
func secEventsBody(t testing.TB, origin string, boot, seq uint64, flags uint8, keys ...string) []byte {
	t.Helper()
	f := wire.Events{Origin: origin, Boot: boot, Zone: "z", Region: "r"}
	for i, k := range keys {
		f.Events = append(f.Events, wire.Event{
			Seq: seq + uint64(i), ID: secIDs.Next(), Key: k,
			Op: syncbus.OpInvalidate, Flags: flags, Time: time.Now().UnixNano(),
		})
	}
	body, err := wire.AppendEvents(nil, &f, false)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// secSeal seals body with s.
func secSeal(t testing.TB, s *wire.Sealer, body []byte) []byte {
	t.Helper()
	dg, err := s.Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

// secAcker names an acknowledging node and the incarnation its acks claim.
type secAcker struct {
	name string
	boot uint64
}

// secAs is b acknowledging as itself, with its real incarnation.
func secAs(b *mesh.MeshBus) secAcker { return secAcker{b.Name(), secBoot(b)} }

// secAcksBody encodes an Acks frame that says each of nodes applied the
// events seqs of origin's incarnation boot.
func secAcksBody(t testing.TB, origin string, boot uint64, seqs []uint64, nodes ...secAcker) []byte {
	t.Helper()
	f := wire.Acks{Origin: origin, Boot: boot}
	for _, n := range nodes {
		f.Acks = append(f.Acks, wire.Ack{Node: n.name, Boot: n.boot, Seqs: seqs})
	}
	body, err := wire.AppendAcks(nil, &f, false)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// secSeqs returns 1..n.
func secSeqs(n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// secDrops returns bus's drop counter for reason.
func secDrops(b *mesh.MeshBus, reason string) uint64 {
	return b.Metrics().DropsByReason[reason]
}

// secBoot returns bus's incarnation, which frames about its events name.
func secBoot(b *mesh.MeshBus) uint64 { return b.Membership().Local().Boot }

// secWatch records the membership events of one bus: the suspicions and
// failures the tests must never see.
type secWatch struct {
	name string
	mu   sync.Mutex
	bad  []membership.Event
}

// secWatchAll starts a watcher per bus. Each ends when its bus closes
// (the membership closes its Events channel); wg counts them.
func secWatchAll(buses []*mesh.MeshBus, wg *sync.WaitGroup) []*secWatch {
	ws := make([]*secWatch, len(buses))
	for i, b := range buses {
		w := &secWatch{name: b.Name()}
		ws[i] = w
		ch := b.Membership().Events()
		// What the channel holds already happened before the watch (the
		// joins of the cluster's start): it is not the test's to judge.
		for range len(ch) {
			<-ch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				switch ev.Kind {
				case membership.EventSuspect, membership.EventFailed, membership.EventLeave:
					w.mu.Lock()
					w.bad = append(w.bad, ev)
					w.mu.Unlock()
				}
			}
		}()
	}
	return ws
}

// secCheckHealthy fails the test when any watcher saw a node become
// suspect, fail or leave, or when any bus sees fewer than n alive members.
func secCheckHealthy(t testing.TB, buses []*mesh.MeshBus, ws []*secWatch, n int, when string) {
	t.Helper()
	for _, w := range ws {
		w.mu.Lock()
		for _, ev := range w.bad {
			t.Errorf("%s: %s saw %s become %v", when, w.name, ev.Node.Name, ev.Kind)
		}
		w.mu.Unlock()
	}
	for _, b := range buses {
		alive := 0
		for _, m := range b.Members() {
			if m.State == syncbus.MemberAlive {
				alive++
			}
		}
		if alive != n {
			t.Errorf("%s: %s sees %d alive members, want %d: %v", when, b.Name(), alive, n, b.Members())
		}
		if d := b.Membership().Stats().EventsDropped; d > 0 {
			t.Errorf("%s: %s dropped %d membership events: the watch is incomplete", when, b.Name(), d)
		}
	}
}

// secHeapInuse returns the bytes of in-use heap spans after a full
// collection.
func secHeapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// secAwait runs PublishAndAwait in a goroutine and returns its result on
// a channel.
func secAwait(ctx context.Context, b *mesh.MeshBus, key string, replicas int, opts ...syncbus.PublishOption) <-chan error {
	out := make(chan error, 1)
	go func() { out <- b.PublishAndAwait(ctx, key, replicas, opts...) }()
	return out
}

// secResult waits for an awaiting call's result.
func secResult(t testing.TB, ch <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(timeout):
		t.Fatalf("awaiting call did not return within %v", timeout)
	}
	return nil
}

// secQuorumError unwraps err into a *syncbus.QuorumError or fails.
func secQuorumError(t testing.TB, err error) *syncbus.QuorumError {
	t.Helper()
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Fatalf("error %v does not match ErrQuorumNotSatisfied", err)
	}
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("error %v is not a *QuorumError", err)
	}
	return qe
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
