package nats_test

import (
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/bridge/bridgetest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
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
// by 4 replies. The latency loops, the bridge's and the raw client's,
// wait the same way (bridgetest.Watchdog), with no timer per receive.

func BenchmarkBurst10k(b *testing.B) {
	srv := startServer(b)
	bridgetest.Burst10k(b, func(b *testing.B, unbatched bool) []*ownedBus {
		opts := []natsbus.Option{natsbus.WithPrefixBuffer(1 << 15)}
		if unbatched {
			opts = append(opts, natsbus.WithBatchSize(1))
		}
		return srv.cluster(b, bridgetest.BenchNodes(2), opts...)
	})
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
			bridgetest.EventualLatency(b, srv.clusterOn(b, bridgetest.BenchNodes(5), v.conn))
		})
		b.Run(v.name+"/await-4", func(b *testing.B) {
			bridgetest.AwaitLatency(b, srv.clusterOn(b, bridgetest.BenchNodes(5), v.conn))
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
