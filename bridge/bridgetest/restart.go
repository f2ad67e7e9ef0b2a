package bridgetest

import (
	"context"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// RestartBus is what RestartUnderLoad needs of a bus.
type RestartBus interface {
	LoadBus
	Health() bridge.Health
	Metrics() syncbus.Metrics
}

// Broker is how a test takes its broker away and brings it back.
type Broker struct {
	// Stop stops the broker. Start starts it again on the same address.
	// Each fails the test through the t it was made with, if it must.
	Stop, Start func()
}

// RestartUnderLoad restarts the broker while buses[0] publishes at a
// steady rate (one event every 5ms, see Load), and checks on every
// subscription of buses[1] and buses[2] (a prefix subscription and one per
// key) that loss is never silent: each event arrived once, or the
// subscription got a resync after it was published. It waits, at most 10s
// each time, for every bus to report the outage and, once the broker is
// back, to reconnect; 40 events are published before the outage, 40
// during it and 40 after. It is for brokers that keep nothing for a
// subscriber that is away, so each subscription must resync at least once.
//
// The buses, three on one broker, must know one another; NewLoad's
// cleanups close them.
func RestartUnderLoad[B RestartBus](t *testing.T, broker Broker, buses []B) {
	t.Helper()
	if len(buses) != 3 {
		t.Fatalf("RestartUnderLoad takes 3 buses, got %d", len(buses))
	}
	load := NewLoad(t, buses[0], buses[1], buses[2])
	load.Start(5 * time.Millisecond)
	load.WaitPublished(t, 40, "before the restart")

	broker.Stop()
	for _, b := range buses {
		warptest.Eventually(t, 10*time.Second, func() bool { return !b.Health().Connected }, "%s", b.Name()+" notices the outage")
	}
	load.WaitPublished(t, 40, "during the outage")
	broker.Start()
	for _, b := range buses {
		warptest.Eventually(t, 10*time.Second, func() bool {
			h := b.Health()
			return h.Connected && h.Reconnects >= 1
		}, "%s", b.Name()+" reconnects")
	}
	load.WaitPublished(t, 40, "after the restart")

	resyncs := load.Finish(t)
	t.Logf("publisher: %d publish errors counted; receivers: %d and %d gaps", buses[0].Metrics().PublishErrors,
		buses[1].Health().Gaps, buses[2].Health().Gaps)
	for sub, n := range resyncs {
		if n == 0 {
			t.Errorf("%s: no resync across the restart", sub)
		}
	}
}

// OutageBus is what ServerRestart needs of a bus.
type OutageBus interface {
	RestartBus
	WaitForMembers(ctx context.Context, n int) error
}

// Outage is what ServerRestart checks that differs between brokers.
type Outage struct {
	// During is what becomes of a plain publish in the outage, which
	// returned nil: ServerRestart waits up to 10s for During(publisher,
	// publisher's own subscription) to hold, under the name DuringWhat.
	DuringWhat string
	During     func(publisher OutageBus, own *warptest.Collector) bool
	// Resyncs bounds the resyncs bus i's subscription may count in all:
	// the reconnect's one, plus what the broker's own losses add.
	Resyncs func(i int) (least, most int)
}

// ServerRestart stops the broker between two awaited publishes, with no
// load, and starts it again on the same address. Every bus must notice the
// outage; a plain publish returns nil (see Outage.During) and an awaiting
// one fails at its deadline; once the broker is back, every bus
// reconnects, its prefix subscription gets its resync (Outage.Resyncs
// bounds how many) and knows the others again, and an awaited publish and
// its delivery work without any call from the user.
//
// The buses, three on one broker, must know one another; the test's
// cleanups close them (ServerRestart waits for their subscriptions to
// close after that).
func ServerRestart[B OutageBus](t *testing.T, broker Broker, buses []B, outage Outage) {
	t.Helper()
	if len(buses) != 3 {
		t.Fatalf("ServerRestart takes 3 buses, got %d", len(buses))
	}
	ctx := context.Background()
	var recs []*warptest.Collector
	for _, b := range buses {
		ch, err := b.SubscribePrefix(ctx, "f/")
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, warptest.Collect(ch))
	}
	t.Cleanup(func() {
		for _, b := range buses {
			_ = b.Close()
		}
		for _, r := range recs {
			<-r.Done()
		}
	})
	eventually := func(what string, cond func() bool) {
		t.Helper()
		warptest.Eventually(t, 10*time.Second, cond, "%s", what)
	}
	if err := buses[0].PublishAndAwait(ctx, "f/before", 2); err != nil {
		t.Fatal(err)
	}

	broker.Stop()
	for _, b := range buses {
		eventually(b.Name()+" notices the outage", func() bool { return !b.Health().Connected })
	}
	if err := buses[1].Publish(ctx, "f/during"); err != nil {
		t.Errorf("Publish during the outage: %v", err)
	}
	eventually(buses[1].Name()+": "+outage.DuringWhat, func() bool { return outage.During(buses[1], recs[1]) })
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := buses[0].PublishAndAwait(short, "f/await-during", 2)
	cancel()
	if err == nil {
		t.Error("PublishAndAwait during the outage: got nil")
	}

	broker.Start()
	for i, b := range buses {
		eventually(b.Name()+" reconnects", func() bool {
			h := b.Health()
			return h.Connected && h.Reconnects == 1
		})
		eventually(b.Name()+" resyncs its subscription", func() bool { return recs[i].Resyncs() >= 1 })
		if err := b.WaitForMembers(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := buses[2].PublishAndAwait(ctx, "f/after", 2); err != nil {
		t.Fatalf("PublishAndAwait after the restart: %v", err)
	}
	for i, r := range recs {
		eventually(buses[i].Name()+" receives the event published after the restart", func() bool { return r.Count("f/after") > 0 })
		least, most := outage.Resyncs(i)
		if n := r.Resyncs(); n < least || n > most {
			t.Errorf("%s: %d resyncs, want %d to %d", buses[i].Name(), n, least, most)
		}
		for _, ev := range r.Events() {
			if ev.Event.Op == syncbus.OpResync && ev.Event.Key != "f/" {
				t.Errorf("%s: resync %+v, want Key f/", buses[i].Name(), ev.Event)
			}
		}
	}
}
