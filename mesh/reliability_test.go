package mesh_test

import (
	"context"
	"errors"
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

var fiveInZones = []bustest.Node{
	{Name: "a1", Zone: "a"}, {Name: "a2", Zone: "a"},
	{Name: "b1", Zone: "b"}, {Name: "b2", Zone: "b"},
	{Name: "c1", Zone: "c"},
}

// collectAll collects what every bus but skip receives under "k:".
func collectAll(t *testing.T, buses []*mesh.MeshBus, skip int) []*warptest.Collector {
	t.Helper()
	out := make([]*warptest.Collector, len(buses))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		for _, c := range out {
			if c != nil {
				<-c.Done()
			}
		}
	})
	for i, b := range buses {
		if i == skip {
			continue
		}
		ch, err := b.SubscribePrefix(ctx, "k:")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = warptest.Collect(ch)
	}
	return out
}

// lossyCluster gives every node of nodes a transport behind one rule
// set that loses rate of the data plane's datagrams.
func lossyCluster(t *testing.T, seed uint64, rate float64, n int) (*faults.Rules, []*nettest.Transport) {
	rules := faults.New(seed)
	rules.Drop(rate, faults.Data())
	trs := make([]*nettest.Transport, n)
	for i := range trs {
		trs[i] = faultyTransport(t, rules)
	}
	return rules, trs
}

// TestLossyPublishesAreRepaired: with 5% of data datagrams lost on every
// node, every other node still receives at least 99.9% of plain publishes
// within a second of their publication, each exactly once.
func TestLossyPublishesAreRepaired(t *testing.T) {
	for _, fanout := range []mesh.FanoutMode{mesh.FanoutDirect, mesh.FanoutRelay} {
		t.Run(fanout.String(), func(t *testing.T) {
			_, trs := lossyCluster(t, 1, 0.05, len(fiveInZones))
			buses := startCluster(t, fiveInZones, withTransports(trs, func(_ int, o *mesh.MeshOptions) {
				o.Fanout = fanout
				o.PrefixBuffer = 1 << 15
			}))
			r := collectAll(t, buses, 0)

			const events = 3000
			published := make(map[string]time.Time, events)
			pace := time.NewTicker(time.Millisecond)
			defer pace.Stop()
			ctx := ctxTimeout(t, 30*time.Second)
			for i := range events {
				key := fmt.Sprintf("k:%d", i)
				published[key] = time.Now()
				if err := buses[0].Publish(ctx, key); err != nil {
					t.Fatal(err)
				}
				if i%10 == 9 {
					<-pace.C // about 10k events/s, in bursts of 10
				}
			}
			warptest.Eventually(t, 10*time.Second, func() bool {
				for i := 1; i < len(buses); i++ {
					if r[i].Distinct() < events {
						return false
					}
				}
				return true
			}, "every node to receive every event")
			for i := 1; i < len(buses); i++ {
				inTime := 0
				for key, at := range published {
					if got, ok := r[i].At(key); ok && got.Sub(at) <= time.Second {
						inTime++
					}
				}
				if ratio := float64(inTime) / events; ratio < 0.999 {
					t.Errorf("%s received %.4f of the events within 1s, want >= 0.999", fiveInZones[i].Name, ratio)
				}
				if d := r[i].Dups(); d != 0 {
					t.Errorf("%s received %d duplicates", fiveInZones[i].Name, d)
				}
			}
			var sent, dropped uint64
			for _, tr := range trs {
				st := tr.Stats()
				sent += st.Sent
				dropped += st.Dropped
			}
			if float64(dropped) < 0.01*float64(sent) { // 5% of a few hundred datagrams, give or take
				t.Fatalf("only %d of %d datagrams dropped: the loss was not injected", dropped, sent)
			}
			m := buses[0].Metrics()
			if m.Retransmits == 0 {
				t.Errorf("publisher retransmitted nothing despite %d drops", dropped)
			}
			t.Logf("%s: dropped %d of %d datagrams; publisher retransmitted %d events; %d repair requests by node 1",
				fanout, dropped, sent, m.Retransmits, buses[1].Metrics().RepairRequests)
		})
	}
}

// TestLossyAwaitsSucceed: awaited publishes retransmit until acknowledged.
func TestLossyAwaitsSucceed(t *testing.T) {
	_, trs := lossyCluster(t, 10, 0.1, len(fiveInZones))
	buses := startCluster(t, fiveInZones, withTransports(trs, func(_ int, o *mesh.MeshOptions) {
		o.Fanout = mesh.FanoutRelay
	}))
	ctx := ctxTimeout(t, 60*time.Second)
	for i := range 100 {
		var rep syncbus.AckReport
		if err := buses[0].PublishAndAwait(ctx, fmt.Sprintf("k:%d", i), 4, syncbus.WithAckReport(&rep)); err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
		if len(rep.Nodes) != 4 {
			t.Fatalf("await %d acked by %v", i, rep.Nodes)
		}
	}
	if buses[0].Metrics().Retransmits == 0 {
		t.Error("no retransmission with 10% loss over 100 awaited events")
	}
}

// TestSilentRelayIsReplaced: a node whose data plane is dead (it still
// gossips, so it stays alive) stops being used as its zone's relay after
// it fails to ack, and awaited publishes still reach its zone.
func TestSilentRelayIsReplaced(t *testing.T) {
	nodes := []bustest.Node{
		{Name: "a1", Zone: "a"},
		{Name: "b1", Zone: "b"}, {Name: "b2", Zone: "b"}, {Name: "b3", Zone: "b"},
	}
	rules := faults.New(1)
	trs := make([]*nettest.Transport, len(nodes))
	trs[1] = faultyTransport(t, rules)
	buses := startCluster(t, nodes, withTransports(trs, func(_ int, o *mesh.MeshOptions) {
		o.Fanout = mesh.FanoutRelay
	}))
	rules.Drop(1, dataFrom(trs[1].Addr())) // b1's data plane goes silent
	ctx := ctxTimeout(t, 60*time.Second)
	for i := range 40 {
		var rep syncbus.AckReport
		err := buses[0].PublishAndAwaitTopology(ctx, fmt.Sprintf("k:%d", i), 2, syncbus.WithZoneQuorum(2), syncbus.WithAckReport(&rep))
		if err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
		if len(rep.Zones) != 2 {
			t.Fatalf("await %d: zones %v", i, rep.Zones)
		}
	}
	if got := buses[0].Metrics().Retransmits; got == 0 {
		t.Fatal("the silent relay was never replaced (no retransmission in 40 events)")
	}
}

// TestUnrepairableGapResyncs: when the events a node missed are no longer in
// the publisher's repair buffer, its subscriptions get a resync naming the
// publisher instead of silence.
func TestUnrepairableGapResyncs(t *testing.T) {
	nodes := []bustest.Node{{Name: "p", Zone: "a"}, {Name: "r", Zone: "a"}}
	rules := faults.New(1)
	trs := []*nettest.Transport{faultyTransport(t, rules), nil}
	buses := startCluster(t, nodes, withTransports(trs, func(i int, o *mesh.MeshOptions) {
		o.RepairBuffer = 16
	}))
	ctx := ctxTimeout(t, 20*time.Second)
	exact, err := buses[1].Subscribe(ctx, "user:7")
	if err != nil {
		t.Fatal(err)
	}
	all, err := buses[1].SubscribePrefix(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := buses[0].PublishAndAwait(ctx, "first", 1); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, all, 5*time.Second); ev.Key != "first" {
		t.Fatalf("got %+v", ev)
	}
	cut := rules.Drop(1, dataFrom(trs[0].Addr(), buses[1].Addr()))
	for i := range 100 {
		if err := buses[0].Publish(ctx, fmt.Sprintf("lost:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	warptest.Eventually(t, 5*time.Second, func() bool {
		return buses[0].Metrics().Batches > 0 && trs[0].Stats().Dropped >= 1
	}, "the publisher to send the lost events")
	cut.Remove()
	if err := buses[0].PublishAndAwait(ctx, "after", 1); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan syncbus.Event{exact, all} {
		deadline := time.After(10 * time.Second)
		for found := false; !found; {
			select {
			case ev := <-ch:
				if ev.Op == syncbus.OpResync {
					if ev.Origin != "p" {
						t.Fatalf("resync names %q, want p", ev.Origin)
					}
					found = true
				}
			case <-deadline:
				t.Fatal("no resync after an unrepairable gap")
			}
		}
	}
	// The dispatcher counts a resync once it has offered it to every
	// subscription: a reader can see it a moment before the count does.
	warptest.Eventually(t, 5*time.Second, func() bool { return buses[1].Metrics().Resyncs >= 2 }, "Resyncs >= 2")
}

// TestRepairableGapIsRepairedSilently: a short outage whose events are
// still in the repair buffer is repaired without any resync.
func TestRepairableGapIsRepairedSilently(t *testing.T) {
	nodes := []bustest.Node{{Name: "p", Zone: "a"}, {Name: "r", Zone: "a"}}
	rules := faults.New(1)
	trs := []*nettest.Transport{faultyTransport(t, rules), nil}
	buses := startCluster(t, nodes, withTransports(trs, nil))
	ctx := ctxTimeout(t, 20*time.Second)
	r := collectAll(t, buses, 0)
	cut := rules.Drop(1, dataFrom(trs[0].Addr(), buses[1].Addr()))
	for i := range 50 {
		if err := buses[0].Publish(ctx, fmt.Sprintf("k:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return trs[0].Stats().Dropped > 0 }, "the events to be sent and lost")
	cut.Remove()
	// No later event reveals the gap: the digests must.
	warptest.Eventually(t, 10*time.Second, func() bool { return r[1].Distinct() == 50 }, "the lost tail to be repaired")
	if m := buses[1].Metrics(); m.Resyncs != 0 || m.RepairRequests == 0 {
		t.Fatalf("resyncs %d, repair requests %d: want 0 and > 0", m.Resyncs, m.RepairRequests)
	}
}

// TestJoinAndLeaveMidStream: a node that joins while events flow receives
// the events published once the publisher knows it; a node that leaves
// stops counting, so the awaiting calls adapt at once.
func TestJoinAndLeaveMidStream(t *testing.T) {
	buses := startCluster(t, fiveInZones[:3], nil)
	ctx := ctxTimeout(t, 30*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = buses[0].Publish(ctx, fmt.Sprintf("stream:%d", i))
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	late := joinNode(t, fiveInZones[3], buses[0], nil)
	waitConverged(t, append(buses[:3:3], late), 4)
	sub, err := late.Subscribe(ctx, "joined")
	if err != nil {
		t.Fatal(err)
	}
	if err := buses[0].PublishAndAwait(ctx, "joined", 3); err != nil {
		t.Fatalf("await with the new node: %v", err)
	}
	if ev := recv(t, sub, 5*time.Second); ev.Origin != "a1" {
		t.Fatalf("late node got %+v", ev)
	}

	if err := buses[2].Close(); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, 10*time.Second, func() bool {
		for _, m := range buses[0].Members() {
			if m.Name == "b1" {
				return m.State == syncbus.MemberLeft
			}
		}
		return false
	}, "%s", "the publisher to see b1 leave")
	if err := buses[0].PublishAndAwait(ctx, "after-leave", 2); err != nil {
		t.Fatalf("await the two remaining others: %v", err)
	}
	start := time.Now()
	err = buses[0].PublishAndAwait(ctx, "after-leave", 3)
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) || !qe.FailFast {
		t.Fatalf("await 3 with 2 others left: %v (after %v), want a fail-fast QuorumError", err, time.Since(start))
	}
}
