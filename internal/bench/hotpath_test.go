package bench

// Go benchmarks of the hot path the harness times: one invalidation from
// the publisher until four receivers stored it (publish-to-deliver), and
// PublishAndAwait(4), through each system on loopback, with the code of
// `warp bench` itself (the receivers store every key). The codec, the
// fanout plan and ack tracking have theirs in wire and zones, and the mesh
// its own in mesh (BenchmarkMesh); the same path on the simulated network
// belongs with package sim.
//
//	go test ./internal/bench -run '^$' -bench . -benchmem

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/twmb/franz-go/pkg/kfake"
)

// startHotTarget starts the system id for a benchmark, or skips it.
func startHotTarget(b *testing.B, id string, keys *keySet) target {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		t   target
		err error
	)
	switch id {
	case Floor:
		t, err = startFloor(keys)
	case Mesh:
		t, err = startMesh(ctx, keys)
	case NATS, NATSBridge:
		srv, serr := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if serr != nil {
			b.Fatal(serr)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			b.Fatal("nats-server not ready")
		}
		b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if id == NATS {
			t, err = startNATSRaw(srv.ClientURL(), keys)
		} else {
			t, err = startNATSBridge(ctx, srv.ClientURL(), keys)
		}
	case Redis, RedisBridge:
		if _, lerr := exec.LookPath("redis-server"); lerr != nil {
			b.Skip("redis-server is not on PATH")
		}
		srv, serr := startRedisServer(ctx)
		if serr != nil {
			b.Fatal(serr)
		}
		b.Cleanup(func() { srv.stop() })
		if id == Redis {
			t, err = startRedisRaw(ctx, srv, keys)
		} else {
			t, err = startRedisBridge(ctx, srv, keys)
		}
	case Kafka, KafkaBridge:
		kc, kerr := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kafkaTopic, kafkaAckTopic))
		if kerr != nil {
			b.Fatal(kerr)
		}
		b.Cleanup(kc.Close)
		if id == Kafka {
			t, err = startKafkaRaw(kc.ListenAddrs(), keys)
		} else {
			t, err = startKafkaBridge(ctx, kc.ListenAddrs(), keys)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.close) // runs before the servers' cleanups
	return t
}

// benchOps times op on every system, reporting p50 and p99 besides ns/op.
func benchOps(b *testing.B, op func(r *runner, t target, ctx context.Context, i int) error) {
	for _, id := range AllSystems {
		b.Run(id, func(b *testing.B) {
			r := &runner{keys: newKeySet(1 << 16)}
			t := startHotTarget(b, id, r.keys)
			for _, rc := range t.receivers() {
				rc.setProbing(true)
			}
			ctx := context.Background()
			for i := range 100 { // warm-up
				if err := op(r, t, ctx, i); err != nil {
					b.Skipf("%s: %v", id, err)
				}
			}
			var samples []time.Duration
			b.ReportAllocs()
			i := 100
			for b.Loop() {
				t0 := time.Now()
				if err := op(r, t, ctx, i); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(t0))
				i++
			}
			l := newLatency("", samples, 0, false)
			b.ReportMetric(l.P50, "p50-us")
			b.ReportMetric(l.P99, "p99-us")
		})
	}
}

// BenchmarkPublishToDeliver: publish one invalidation and wait until all
// four receivers stored it.
func BenchmarkPublishToDeliver(b *testing.B) {
	benchOps(b, func(r *runner, t target, ctx context.Context, i int) error {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		return r.eventualOp(octx, t, t.receivers(), i)
	})
}

// BenchmarkPublishAndAwait4: PublishAndAwait(4), or the raw client's
// request answered by 4 replies, or the floor's 4 acks.
func BenchmarkPublishAndAwait4(b *testing.B) {
	benchOps(b, func(_ *runner, t target, ctx context.Context, i int) error {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		return t.await(octx, i)
	})
}

// BenchmarkReceiverDeliver is the receivers' own work per event in a
// flood (store the key, count, note the time): the same for every system.
func BenchmarkReceiverDeliver(b *testing.B) {
	keys := newKeySet(1 << 16)
	rc := newReceiver()
	rc.reset(1 << 62)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rc.deliver(keys.key(i))
		i++
	}
}
