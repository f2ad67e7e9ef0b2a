package kafka_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

func runConformance(t *testing.T, fromBrokers bool) {
	kc := startKafka(t)
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		// Presence every 500ms, not the helpers' 200ms: kfake serves every
		// request on one goroutine, and on a loaded machine a node once
		// went 600ms (three intervals) without being heard, which made it
		// failed and turned an awaited deadline into a fail-fast.
		buses := cluster(t, kc, fromBrokers, nodes, kafkabus.WithPrefixBuffer(64), kafkabus.WithPresenceInterval(500*time.Millisecond))
		c := &bustest.Cluster{Mute: func(i int) { kafkabus.SetMuted(buses[i].KafkaBus, true) }}
		for _, b := range buses {
			c.Buses = append(c.Buses, b)
		}
		return c
	}
	bustest.Run(t, factory, bustest.Features{
		Quorum: true, ZoneAcks: true, ZoneQuorum: true,
		Prefix: true, Relay: true, Members: true, All: true,
		PrefixBuffer:  64,
		Timeout:       15 * time.Second,
		AwaitDeadline: 3 * time.Second,
		LeakIgnore:    []goleak.Option{metricsArbiter},
	})
}

// TestConformance runs the conformance suite on buses of NewKafkaBus (acks
// on the bus's topic) against an in-process Kafka cluster.
func TestConformance(t *testing.T) { runConformance(t, false) }

// TestConformanceFromBrokers runs it on buses of NewKafkaBusFromBrokers
// (a consumer group and an acknowledgement topic of their own). Under the
// race detector the suite runs once, on NewKafkaBus (the code the two
// share), and TestFromBrokersAcks checks what differs.
func TestConformanceFromBrokers(t *testing.T) {
	if warptest.RaceEnabled {
		t.Skip("the suite takes a minute under the race detector; it runs on NewKafkaBus here, and on both without -race")
	}
	runConformance(t, true)
}

// TestFromBrokersAcks: buses of NewKafkaBusFromBrokers deliver to each
// other and count each other's acknowledgements, by node and by zone,
// through their acknowledgement topic.
func TestFromBrokersAcks(t *testing.T) {
	kc := startKafka(t)
	buses := cluster(t, kc, true, []bustest.Node{{Name: "a", Zone: "z1"}, {Name: "b", Zone: "z2"}, {Name: "c", Zone: "z3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := buses[2].SubscribePrefix(ctx, "fb")
	if err != nil {
		t.Fatal(err)
	}
	if err := buses[0].PublishAndAwait(ctx, "fb1", 2); err != nil {
		t.Fatalf("PublishAndAwait(2): %v", err)
	}
	if err := buses[0].PublishAndAwaitTopology(ctx, "fb2", 3); err != nil {
		t.Fatalf("PublishAndAwaitTopology(3): %v", err)
	}
	for range 2 {
		select {
		case ev := <-sub:
			if ev.Op != syncbus.OpInvalidate || ev.Origin != "a" {
				t.Fatalf("c got %+v", ev)
			}
		case <-ctx.Done():
			t.Fatal("c did not get both events")
		}
	}
	if m := buses[0].Metrics(); m.AcksReceived < 4 || m.AwaitSatisfied != 2 {
		t.Errorf("acks received %d, awaits satisfied %d: want at least 4 and 2", m.AcksReceived, m.AwaitSatisfied)
	}
}
