package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/warpmesh/warp/bridge/bridgetest"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// The bridge's costs against the raw client's on the same server, in the
// same run (BENCHMARKS.md, "Bridges"):
//
//	go test -run '^$' -bench . -count 5 ./bridge/redis/
//
// Burst: broker messages and bytes per 10 000 invalidations, batched (the
// default) and not (WithBatchSize(1)). Eventual: publish, then wait until 4
// other nodes delivered it. Await: PublishAndAwait(4). The raw client's
// versions: a publish received by 4 subscriptions, and a request answered
// by 4 replies.

func benchNodes(n int) []bustest.Node {
	nodes := make([]bustest.Node, n)
	for i := range nodes {
		nodes[i] = bustest.Node{Name: fmt.Sprintf("b%d", i), Zone: fmt.Sprintf("z%d", i%3)}
	}
	return nodes
}

func BenchmarkBurst10k(b *testing.B) {
	srv := startRedis(b)
	for _, batch := range []int{0, 1} {
		name := "batched"
		if batch == 1 {
			name = "unbatched"
		}
		b.Run(name, func(b *testing.B) {
			opts := []redisbus.Option{redisbus.WithPrefixBuffer(1 << 15)}
			if batch == 1 {
				opts = append(opts, redisbus.WithBatchSize(1))
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
				b.Cleanup(func() {
					if b.Failed() {
						b.Logf("publisher %+v %+v\nreceiver %+v %v", buses[0].Health(), buses[0].Metrics().PublishErrors, buses[1].Health(), buses[1].Metrics().DropsByReason)
					}
				})
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
	srv := startRedis(b)
	ctx := context.Background()

	b.Run("bridge/eventual-4", func(b *testing.B) {
		bridgetest.EventualLatency(b, srv.cluster(b, benchNodes(5)))
	})
	b.Run("bridge/await-4", func(b *testing.B) {
		bridgetest.AwaitLatency(b, srv.cluster(b, benchNodes(5)))
	})
	b.Run("raw/publish-4", func(b *testing.B) {
		pub, subs := rawClients(b, srv, 4)
		ch := make(chan struct{}, 16)
		for _, c := range subs {
			ps := c.Subscribe(ctx, "raw:lat")
			if _, err := ps.Receive(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ps.Close() })
			go func() {
				for range ps.Channel() {
					ch <- struct{}{}
				}
			}()
		}
		payload := make([]byte, 100)
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			_ = pub.Publish(ctx, "raw:lat", payload).Err()
			for range subs {
				bridgetest.Next(b, w, ch)
			}
			w.Progress()
		}
	})
	b.Run("raw/request-4-replies", func(b *testing.B) {
		pub, subs := rawClients(b, srv, 4)
		for _, c := range subs {
			ps := c.Subscribe(ctx, "raw:req")
			if _, err := ps.Receive(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ps.Close() })
			go func() {
				for m := range ps.Channel() {
					_ = c.Publish(ctx, "raw:reply", m.Payload[:8]).Err()
				}
			}()
		}
		replies := pub.Subscribe(ctx, "raw:reply")
		if _, err := replies.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = replies.Close() })
		rch := replies.Channel()
		payload := make([]byte, 100)
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			if err := pub.Publish(ctx, "raw:req", payload).Err(); err != nil {
				b.Fatal(err)
			}
			for range subs {
				bridgetest.Next(b, w, rch)
			}
			w.Progress()
		}
	})
}

func rawClients(b *testing.B, srv *redisServer, n int) (*goredis.Client, []*goredis.Client) {
	b.Helper()
	client := func() *goredis.Client {
		c := srv.client()
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	pub := client()
	subs := make([]*goredis.Client, n)
	for i := range subs {
		subs[i] = client()
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
