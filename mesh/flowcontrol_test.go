package mesh_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/internal/warptest/nettest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// openLoopEvents is the burst of TestOpenLoopBurstLosesNothing: the
// figure of the issue that asked for flow control.
const openLoopEvents = 300_000

// drained is a receiver that drains a prefix subscription into a map, as
// a cache would: as fast as it can, and no faster.
type drained struct {
	mu      sync.Mutex
	keys    map[string]struct{}
	resyncs int
	done    chan struct{}
}

func drain(ch <-chan syncbus.Event) *drained {
	d := &drained{keys: make(map[string]struct{}, openLoopEvents), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for ev := range ch {
			d.mu.Lock()
			if ev.Op == syncbus.OpResync {
				d.resyncs++
			} else {
				d.keys[ev.Key] = struct{}{}
			}
			d.mu.Unlock()
		}
	}()
	return d
}

func (d *drained) counts() (keys, resyncs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys), d.resyncs
}

// TestOpenLoopBurstLosesNothing: three nodes in three zones, one
// publisher calling plain Publish for distinct keys in a loop as fast as
// it can, two receivers draining a prefix subscription (the default
// buffer) into a map. Without flow control the receivers' subscriptions
// overflowed: each got about a sixth of the burst and some fifty resyncs.
// With it, every receiver gets every event and no resync — also when the
// test kit's lossy transport drops 10% of every node's data datagrams
// (events, acks, repairs, digests and credit alike).
func TestOpenLoopBurstLosesNothing(t *testing.T) {
	// It runs beside the other parallel tests, after every test that
	// checks for leaked goroutines has finished.
	t.Parallel()
	for _, loss := range []float64{0, 0.10} {
		t.Run(fmt.Sprintf("loss=%.0f%%", loss*100), func(t *testing.T) {
			rules := faults.New(uint64(1 + loss*100))
			if loss > 0 {
				rules.Drop(loss, faults.Data())
			}
			nodes := []bustest.Node{{Name: "pub", Zone: "a"}, {Name: "r1", Zone: "b"}, {Name: "r2", Zone: "c"}}
			trs := []*nettest.Transport{faultyTransport(t, rules), faultyTransport(t, rules), faultyTransport(t, rules)}
			buses := startCluster(t, nodes, withTransports(trs, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var receivers []*drained
			for _, b := range buses[1:] {
				ch, err := b.SubscribePrefix(ctx, "user:")
				if err != nil {
					t.Fatal(err)
				}
				receivers = append(receivers, drain(ch))
			}
			start := time.Now()
			for i := range openLoopEvents {
				if err := buses[0].Publish(ctx, fmt.Sprintf("user:%d:profile", i)); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			published := time.Since(start)
			warptest.Eventually(t, 4*time.Minute, func() bool {
				for _, r := range receivers {
					if n, _ := r.counts(); n < openLoopEvents {
						return false
					}
				}
				return true
			}, "every receiver to get all %d events: %s", openLoopEvents, func() string { return describeDrained(buses, receivers) })
			elapsed := time.Since(start)
			for i, r := range receivers {
				if _, resyncs := r.counts(); resyncs != 0 {
					t.Errorf("%s got %d resyncs: a receiver lost events it could have held", buses[i+1].Name(), resyncs)
				}
			}
			m := buses[0].Metrics()
			var dropped uint64
			for _, tr := range trs {
				dropped += tr.Stats().Dropped
			}
			t.Logf("%d events published in %v, all delivered to both receivers in %v (%.0f events/s); %d flow-control stalls (%v), %d receivers released; %d datagrams dropped, %d retransmitted events",
				openLoopEvents, published.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(openLoopEvents)/elapsed.Seconds(),
				m.FlowStalls, m.FlowStallTime.Round(time.Millisecond), m.FlowReleased, dropped, m.Retransmits)
			if loss > 0 && dropped == 0 {
				t.Fatal("no datagram was dropped: the loss was not injected")
			}
			for _, b := range buses {
				_ = b.Close()
			}
			for _, r := range receivers {
				<-r.done
			}
		})
	}
}

func describeDrained(buses []*mesh.MeshBus, rs []*drained) string {
	s := ""
	for i, r := range rs {
		n, resyncs := r.counts()
		m := buses[i+1].Metrics()
		s += fmt.Sprintf("\n  %s: %d keys, %d resyncs, dropped %d, repair requests %d, duplicates %d", buses[i+1].Name(), n, resyncs, m.Dropped, m.RepairRequests, m.Duplicates)
	}
	m := buses[0].Metrics()
	return s + fmt.Sprintf("\n  publisher: stalls %d (%v), released %d, retransmits %d, health %+v", m.FlowStalls, m.FlowStallTime, m.FlowReleased, m.Retransmits, buses[0].Health())
}

// TestOwnSubscriptionsPaceThePublisher: the publisher's own prefix
// subscription is a receiver like the others: a burst published faster
// than its reader reads is held back until it has room, so the reader
// gets every event and no resync (it had one resync per refill). A reader
// that stops reading holds publishes back StallTimeout at most, then gets
// one resync for what it could not hold.
func TestOwnSubscriptionsPaceThePublisher(t *testing.T) {
	const burst = 5000
	buses := startCluster(t, secTwoNodes, func(_ int, o *mesh.MeshOptions) {
		o.PrefixBuffer = 64
		o.StallTimeout = 200 * time.Millisecond
	})
	a := buses[0]
	ctx := ctxTimeout(t, time.Minute)
	sub, err := a.SubscribePrefix(ctx, "own:")
	if err != nil {
		t.Fatal(err)
	}
	got := warptest.Collect(sub)
	for i := range burst {
		if err := a.Publish(ctx, fmt.Sprintf("own:%d", i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	warptest.Eventually(t, 30*time.Second, func() bool { return got.Distinct() == burst },
		"the publisher's own subscription to get the burst: %d of %d", got.Distinct(), burst)
	if got.Resyncs() != 0 || a.Metrics().Dropped != 0 {
		t.Errorf("%d resyncs, %d dropped: want none", got.Resyncs(), a.Metrics().Dropped)
	}

	// A reader that went away: the publisher waits for it once, then goes
	// on without it.
	stuck, err := a.SubscribePrefix(ctx, "own:")
	if err != nil {
		t.Fatal(err)
	}
	released := a.Metrics().FlowReleased
	for i := range 200 {
		if err := a.Publish(ctx, fmt.Sprintf("own:stuck:%d", i)); err != nil {
			t.Fatalf("publish %d with a stuck reader: %v", i, err)
		}
	}
	if r := a.Metrics().FlowReleased - released; r != 1 {
		t.Errorf("the stuck reader was let go %d times, want once", r)
	}
	// It comes back: what it holds, then one resync for the rest.
	resyncs, read := 0, 0
	for resyncs == 0 {
		select {
		case ev := <-stuck:
			read++
			if ev.Op == syncbus.OpResync {
				resyncs++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the stuck reader read %d events and no resync", read)
		}
	}
	for len(stuck) > 0 {
		if ev := <-stuck; ev.Op == syncbus.OpResync {
			resyncs++
		}
	}
	if resyncs != 1 {
		t.Errorf("the stuck reader got %d resyncs, want one", resyncs)
	}
}

// pollWatch is the system clock, and tells when a publish held by its
// node's own subscriptions starts waiting: that wait makes the only timer
// of mesh.LocalPoll.
type pollWatch struct {
	waiting chan struct{}
	once    sync.Once
}

func (w *pollWatch) Now() time.Time { return time.Now() }

func (w *pollWatch) NewTimer(d time.Duration) mesh.Timer {
	if d == mesh.LocalPoll {
		w.once.Do(func() { close(w.waiting) })
	}
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
func (t realTimer) Stop() bool                 { return t.t.Stop() }

// TestOwnFullSubscriptionReleasesOnRead: a publish held by the node's own
// full prefix subscription goes on once the reader takes one event — not
// at StallTimeout, which is an hour here — and the reader then gets every
// event in order, without a resync.
func TestOwnFullSubscriptionReleasesOnRead(t *testing.T) {
	const size = 4
	watch := &pollWatch{waiting: make(chan struct{})}
	buses := startCluster(t, []bustest.Node{{Name: "solo", Zone: "a"}}, func(_ int, o *mesh.MeshOptions) {
		o.PrefixBuffer = size
		o.StallTimeout = time.Hour
		o.Clock = watch
	})
	a := buses[0]
	ctx := ctxTimeout(t, time.Minute)
	sub, err := a.SubscribePrefix(ctx, "held:")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= size; i++ {
		if err := a.Publish(ctx, fmt.Sprintf("held:%d", i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	before := a.Metrics()
	done := make(chan error, 1)
	go func() { done <- a.Publish(ctx, fmt.Sprintf("held:%d", size+1)) }()
	select {
	case <-watch.waiting:
	case err := <-done:
		t.Fatalf("the publish into a full subscription returned (%v) without waiting", err)
	case <-ctx.Done():
		t.Fatal("the publish into a full subscription never waited")
	}
	if m := a.Metrics(); m.Published != before.Published {
		t.Fatalf("published %d events while the subscription was full, want %d", m.Published, before.Published)
	}

	if ev := recv(t, sub, 10*time.Second); ev.Key != "held:1" {
		t.Fatalf("read %+v, want held:1", ev)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held publish: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the held publish did not go on after the reader made room")
	}
	m := a.Metrics()
	if m.Published != before.Published+1 || m.FlowStalls != before.FlowStalls+1 || m.FlowReleased != before.FlowReleased || m.Dropped != 0 {
		t.Errorf("after the read: published +%d, stalls +%d, released +%d, dropped %d; want +1, +1, +0, 0",
			m.Published-before.Published, m.FlowStalls-before.FlowStalls, m.FlowReleased-before.FlowReleased, m.Dropped)
	}
	for i := 2; i <= size+1; i++ {
		if ev := recv(t, sub, 10*time.Second); ev.Key != fmt.Sprintf("held:%d", i) {
			t.Fatalf("read %v %q, want held:%d", ev.Op, ev.Key, i)
		}
	}
}
