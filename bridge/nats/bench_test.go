package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/bridge/bridgetest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// The bridge's costs against the raw client's on the same server, in the
// same run (BENCHMARKS.md, "Bridges"):
//
//	go test -run '^$' -bench . -count 5 ./bridge/nats/
//
// Burst: broker messages and bytes per 10 000 invalidations, batched (the
// default) and not (WithBatchSize(1)). Eventual: publish, then wait until 4
// other nodes delivered it. Await: PublishAndAwait(4). The raw client's
// versions: a publish received by 4 subscriptions, and a request answered
// by 4 replies. Every loop waits the same way (bridgetest.Watchdog), with
// no timer per receive.

func benchNodes(n int) []bustest.Node {
	nodes := make([]bustest.Node, n)
	for i := range nodes {
		nodes[i] = bustest.Node{Name: fmt.Sprintf("b%d", i), Zone: fmt.Sprintf("z%d", i%3)}
	}
	return nodes
}

func BenchmarkBurst10k(b *testing.B) {
	srv := startServer(b)
	for _, batch := range []int{0, 1} {
		name := "batched"
		if batch == 1 {
			name = "unbatched"
		}
		b.Run(name, func(b *testing.B) {
			opts := []natsbus.Option{natsbus.WithPrefixBuffer(1 << 15)}
			if batch == 1 {
				opts = append(opts, natsbus.WithBatchSize(1))
			}
			buses := srv.cluster(b, benchNodes(2), opts...)
			ctx := context.Background()
			sub, _ := buses[1].SubscribePrefix(ctx, "burst/")
			const n = 10000
			var msgs, bytes uint64
			b.ResetTimer()
			for range b.N {
				before := buses[0].Metrics()
				for i := range n {
					_ = buses[0].Publish(ctx, fmt.Sprintf("burst/%d", i))
				}
				recvN(b, sub, n)
				after := buses[0].Metrics()
				msgs += after.Batches - before.Batches
				bytes += after.SentLocal.Bytes - before.SentLocal.Bytes
			}
			b.ReportMetric(float64(msgs)/float64(b.N), "msgs/10k")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/10k")
		})
	}
}

func BenchmarkLatency(b *testing.B) {
	srv := startServer(b)

	// "bridge" nodes connect as nats.Connect does; "bridge-noecho" nodes
	// with nats.NoEcho, which spares the server and each node the echo of
	// the node's own frames.
	for _, v := range []struct {
		name string
		conn []natsgo.Option
	}{{"bridge", nil}, {"bridge-noecho", []natsgo.Option{natsgo.NoEcho()}}} {
		b.Run(v.name+"/eventual-4", func(b *testing.B) {
			bridgetest.EventualLatency(b, srv.clusterOn(b, benchNodes(5), v.conn))
		})
		b.Run(v.name+"/await-4", func(b *testing.B) {
			bridgetest.AwaitLatency(b, srv.clusterOn(b, benchNodes(5), v.conn))
		})
	}
	b.Run("raw/publish-4", func(b *testing.B) {
		pub, subs := rawConns(b, srv, 4)
		ch := make(chan struct{}, 16)
		for _, c := range subs {
			if _, err := c.Subscribe("raw.lat", func(*natsgo.Msg) { ch <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			_ = c.Flush()
		}
		payload := make([]byte, 100)
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			_ = pub.Publish("raw.lat", payload)
			for range subs {
				bridgetest.Next(b, w, ch)
			}
			w.Progress()
		}
	})
	b.Run("raw/request-4-replies", func(b *testing.B) {
		pub, subs := rawConns(b, srv, 4)
		for _, c := range subs {
			if _, err := c.Subscribe("raw.req", func(m *natsgo.Msg) { _ = m.Respond(m.Data[:8]) }); err != nil {
				b.Fatal(err)
			}
			_ = c.Flush()
		}
		inbox := pub.NewInbox()
		replies := make(chan struct{}, 16)
		if _, err := pub.Subscribe(inbox, func(*natsgo.Msg) { replies <- struct{}{} }); err != nil {
			b.Fatal(err)
		}
		_ = pub.Flush()
		payload := make([]byte, 100)
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			_ = pub.PublishRequest("raw.req", inbox, payload)
			for range subs {
				bridgetest.Next(b, w, replies)
			}
			w.Progress()
		}
	})
}

func rawConns(b *testing.B, srv *natsServer, n int) (*natsgo.Conn, []*natsgo.Conn) {
	b.Helper()
	conn := func() *natsgo.Conn {
		c, err := natsgo.Connect(srv.url())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	pub := conn()
	subs := make([]*natsgo.Conn, n)
	for i := range subs {
		subs[i] = conn()
	}
	return pub, subs
}

// recvN receives n events from ch, failing (rather than hanging) when they
// do not come.
func recvN(b *testing.B, ch <-chan syncbus.Event, n int) {
	b.Helper()
	for i := range n {
		select {
		case ev := <-ch:
			if ev.Op == syncbus.OpResync {
				b.Fatalf("event %d of %d: a resync: events were lost", i, n)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("event %d of %d: nothing within 30s", i, n)
		}
	}
}
