package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/warpmesh/warp/bridge/bridgetest"
	redisbus "github.com/warpmesh/warp/bridge/redis"
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

func BenchmarkBurst10k(b *testing.B) {
	srv := startRedis(b)
	bridgetest.Burst10k(b, func(b *testing.B, unbatched bool) []*ownedBus {
		opts := []redisbus.Option{redisbus.WithPrefixBuffer(1 << 15)}
		if unbatched {
			opts = append(opts, redisbus.WithBatchSize(1))
		}
		return srv.cluster(b, bridgetest.BenchNodes(2), opts...)
	})
}

func BenchmarkLatency(b *testing.B) {
	srv := startRedis(b)
	ctx := context.Background()

	b.Run("bridge/eventual-4", func(b *testing.B) {
		bridgetest.EventualLatency(b, srv.cluster(b, bridgetest.BenchNodes(5)))
	})
	b.Run("bridge/await-4", func(b *testing.B) {
		bridgetest.AwaitLatency(b, srv.cluster(b, bridgetest.BenchNodes(5)))
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
