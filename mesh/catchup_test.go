package mesh_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/internal/warptest/nettest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// TestSlowSubscriberCatchUpResyncsOnce: a subscriber that stops reading
// holds the publisher back for StallTimeout, then overflows while the
// publisher goes on without it. When it reads again — slowly, while 10 000
// more events come — it gets exactly one resync for the whole episode, not
// one each time it frees a slot (which made a returning node flush its
// cache tens of times), and the publisher is paced by its reading again:
// the events after the episode arrive.
func TestSlowSubscriberCatchUpResyncsOnce(t *testing.T) {
	const events = 10_000
	buses := startCluster(t, secTwoNodes, func(i int, o *mesh.MeshOptions) {
		o.StallTimeout = 200 * time.Millisecond
		o.PrefixBuffer = 512
	})
	a, b := buses[0], buses[1]
	ctx := ctxTimeout(t, time.Minute)
	ch, err := b.SubscribePrefix(ctx, "cu")
	if err != nil {
		t.Fatal(err)
	}
	// The reader is away: the subscription fills, the publisher stalls,
	// then goes on without b.
	for i := range 2000 {
		if err := a.Publish(ctx, fmt.Sprintf("cu1:%d", i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	warptest.Eventually(t, 30*time.Second, func() bool { return a.Metrics().FlowReleased > 0 && a.BatcherIdle() },
		"the publisher to give up waiting for b and send everything")
	// The reader comes back, slower than the network. Once it has read the
	// resync that stands for what it lost, b grants credit again, and the
	// publisher waits for it again: 10 000 more events reach b at its own
	// pace, with no second resync.
	type tally struct{ resyncs, got int }
	back, done := make(chan struct{}), make(chan tally)
	go func() {
		var n tally
		// A slow reader: ten events a tick (pacing, not synchronisation).
		slow := time.NewTicker(250 * time.Microsecond)
		defer slow.Stop()
		for ev := range ch {
			switch {
			case ev.Op == syncbus.OpResync:
				n.resyncs++
				if n.resyncs == 1 {
					close(back)
				}
			case ev.Key == fmt.Sprintf("cu2:%d", events-1):
				n.got++
				done <- n
				return
			default:
				n.got++
			}
			if (n.got+n.resyncs)%10 == 0 {
				<-slow.C
			}
		}
		done <- n
	}()
	<-back
	warptest.Eventually(t, 10*time.Second, func() bool { return a.Health().ReleasedReceivers == 0 },
		"the publisher to wait for b again")
	for i := range events {
		if err := a.Publish(ctx, fmt.Sprintf("cu2:%d", i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var n tally
	select {
	case n = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the last event did not reach the slow reader; b: %+v", b.Metrics())
	}
	m := a.Metrics()
	t.Logf("b read %d events and %d resyncs; b dropped %d; a stalled %d times (%v), released %d receivers",
		n.got, n.resyncs, b.Metrics().Dropped, m.FlowStalls, m.FlowStallTime, m.FlowReleased)
	if n.resyncs != 1 {
		t.Errorf("%d resyncs for one overflow episode, want exactly 1", n.resyncs)
	}
	if b.Metrics().Dropped == 0 {
		t.Error("b's subscription never overflowed: the episode did not happen")
	}
}

// TestAwaitsFollowTheRoundTrip: on links with a 40ms round trip and no
// loss, an awaited event is sent once to each node (within 5%): the
// retransmission timeout follows the measured round trip instead of firing
// at a fixed 20ms, which sent every awaited event twice across zones.
func TestAwaitsFollowTheRoundTrip(t *testing.T) {
	const warmUp, awaits = 5, 60
	rules := faults.New(1)
	rules.Delay(20*time.Millisecond, 0, faults.Data()) // each way
	trs := []*nettest.Transport{faultyTransport(t, rules), faultyTransport(t, rules), faultyTransport(t, rules)}
	buses := startCluster(t, secThreeNodes, withTransports(trs, nil))
	ctx := ctxTimeout(t, time.Minute)
	// The first awaits measure the round trip: until then the timeout is
	// 20ms, and backs off.
	for i := range warmUp {
		if err := buses[0].PublishAndAwait(ctx, fmt.Sprintf("rtt:warm:%d", i), 2); err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
	}
	before := buses[0].Metrics().Retransmits
	for i := range awaits {
		if err := buses[0].PublishAndAwait(ctx, fmt.Sprintf("rtt:%d", i), 2); err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
	}
	m := buses[0].Metrics()
	m.Retransmits -= before
	sends := float64(awaits*2+int(m.Retransmits)) / float64(awaits*2)
	t.Logf("%d awaited events to 2 nodes over a 40ms round trip (after %d that measured it, with %d retransmissions): %d retransmissions, %.3f sends per event and node; ack p50 %v",
		awaits, warmUp, before, m.Retransmits, sends, m.AckLatency.Quantile(0.5))
	if sends > 1.05 {
		t.Errorf("%.3f sends per awaited event and node with no loss, want at most 1.05", sends)
	}
}

// TestPartitionHealRepairsEachMissingEventAboutOnce: a node cut off while
// 3000 events are published (across a 40ms round trip) gets them all
// repaired after the heal, with no resync, and the publisher resends each
// missing event about once — at most 1.3 times — instead of retransmitting
// on timers blind to the round trip (which sent 3.8 times the missing
// events after a 15 s partition, and the receiver counted its duplicates
// by the tens of thousands).
func TestPartitionHealRepairsEachMissingEventAboutOnce(t *testing.T) {
	const events = 3000
	rules := faults.New(1)
	rules.Delay(20*time.Millisecond, 0, faults.Data()) // each way
	trs := []*nettest.Transport{faultyTransport(t, rules), faultyTransport(t, rules), faultyTransport(t, rules)}
	buses := startCluster(t, secThreeNodes, withTransports(trs, nil))
	r := collectAll(t, buses, 0)
	ctx := ctxTimeout(t, time.Minute)
	cut := rules.Partition([]netip.AddrPort{trs[2].Addr()}, []netip.AddrPort{trs[0].Addr(), trs[1].Addr()}, false)
	pace := time.NewTicker(time.Millisecond) // pacing the publisher, not synchronisation
	defer pace.Stop()
	for i := range events {
		<-pace.C
		if err := buses[0].Publish(ctx, fmt.Sprintf("k:%d", i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	warptest.Eventually(t, 10*time.Second, func() bool { return buses[0].BatcherIdle() && r[1].Distinct() == events },
		"every event sent, and delivered on the side of the cut")
	before, missing := buses[0].Metrics().Retransmits, events-r[2].Distinct()
	cut.Remove()
	warptest.Eventually(t, 30*time.Second, func() bool { return r[2].Distinct() == events },
		"the cut-off node to get every event: it has %d of %d", r[2].Distinct(), events)
	resent := buses[0].Metrics().Retransmits - before
	m := buses[2].Metrics()
	ratio := float64(resent) / float64(missing)
	t.Logf("%d of %d events missed during the cut; %d resent after the heal (%.2f per missing event); receiver: %d duplicates, %d repair requests, %d resyncs",
		missing, events, resent, ratio, m.Duplicates, m.RepairRequests, r[2].Resyncs())
	if missing < events/2 {
		t.Fatalf("only %d events missed: the cut did not hold", missing)
	}
	if r[2].Resyncs() != 0 {
		t.Errorf("%d resyncs: every missing event was still in the repair buffer", r[2].Resyncs())
	}
	if ratio > 1.3 {
		t.Errorf("%.2f events resent per missing event, want at most 1.3", ratio)
	}
	if r[2].Dups() != 0 {
		t.Errorf("%d events delivered twice", r[2].Dups())
	}
}
