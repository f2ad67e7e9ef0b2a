package kafka_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	"github.com/warpmesh/warp/syncbus/bustest"
)

func runConformance(t *testing.T, fromBrokers bool) {
	kc := startKafka(t)
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		buses := cluster(t, kc, fromBrokers, nodes, kafkabus.WithPrefixBuffer(64))
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
// (a consumer group and an acknowledgement topic of their own).
func TestConformanceFromBrokers(t *testing.T) { runConformance(t, true) }
