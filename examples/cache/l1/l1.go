// Package l1 is a local (L1) cache kept coherent by a Warp bus: the wiring
// every service needs between github.com/maypok86/otter/v2 and a
// syncbus.Bus, small enough to copy.
//
//   - A read that misses loads from the source of truth (the database) and
//     caches the value — unless an invalidation of that key arrived while it
//     was loading: a version fence refuses to put back a value that may
//     already be stale. This is the load-then-set race that users of Redis
//     client-side caching report: without the fence, a read that started
//     before a write and finished after its invalidation keeps the old value
//     cached until it expires.
//   - An OpInvalidate event drops its key (Invalidate); an OpResync event —
//     the bus saying that events may have been missed — drops everything
//     (InvalidateAll), because serving stale data is worse than a miss.
//
// The writer's side is the bus's: update the database, then publish the key
// (PublishAndAwaitTopology(ctx, key, 2) to know two zones dropped it).
//
// It is an example: the warp demo and examples/cache use it, and it lives
// outside the library (which depends on no cache).
package l1

import (
	"context"
	"hash/maphash"
	"sync/atomic"

	"github.com/maypok86/otter/v2"

	"github.com/warpmesh/warp/syncbus"
)

// fenceStripes is the number of version counters the keys share. A key
// whose stripe moved during its load is not cached; a collision only costs
// an extra miss, never a stale value.
const fenceStripes = 4096

// Loader reads a key from the source of truth.
type Loader[V any] func(ctx context.Context, key string) (V, error)

// Cache is a bounded local cache of values of type V in front of a Loader,
// kept coherent by the events of a bus. It is safe for concurrent use.
type Cache[V any] struct {
	c    *otter.Cache[string, V]
	load Loader[V]
	seed maphash.Seed

	// fences[i] counts the invalidations of the keys of stripe i, and
	// epoch the InvalidateAll calls: a load records both before it reads
	// the source and caches its value only if neither moved.
	fences [fenceStripes]atomic.Uint64
	epoch  atomic.Uint64

	hits, misses, invalidations, resyncs, fenced atomic.Uint64
}

// Stats are a cache's counters.
type Stats struct {
	// Hits and Misses count reads.
	Hits, Misses uint64
	// Invalidations counts keys dropped by Invalidate (or OpInvalidate
	// events), cached or not; Resyncs counts InvalidateAll calls.
	Invalidations, Resyncs uint64
	// Fenced counts loaded values that were not cached because their key
	// was invalidated while they were being loaded.
	Fenced uint64
	// Size is the approximate number of cached entries.
	Size int
}

// New returns a cache of at most maxEntries values that loads misses with
// load. Call Close when done with it.
func New[V any](maxEntries int, load Loader[V]) (*Cache[V], error) {
	c, err := otter.New(&otter.Options[string, V]{MaximumSize: maxEntries})
	if err != nil {
		return nil, err
	}
	return &Cache[V]{c: c, load: load, seed: maphash.MakeSeed()}, nil
}

func (c *Cache[V]) fence(key string) *atomic.Uint64 {
	return &c.fences[maphash.String(c.seed, key)%fenceStripes]
}

// Get returns key's value, from the cache (hit true) or from the loader.
// A loaded value is cached unless key was invalidated during the load.
func (c *Cache[V]) Get(ctx context.Context, key string) (v V, hit bool, err error) {
	if v, ok := c.c.GetIfPresent(key); ok {
		c.hits.Add(1)
		return v, true, nil
	}
	c.misses.Add(1)
	f := c.fence(key)
	version, epoch := f.Load(), c.epoch.Load()
	v, err = c.load(ctx, key)
	if err != nil {
		return v, false, err
	}
	// Compute holds key's bucket lock: an Invalidate that bumps the fence
	// after this check waits for the lock and then drops what we wrote.
	c.c.Compute(key, func(old V, found bool) (V, otter.ComputeOp) {
		if f.Load() != version || c.epoch.Load() != epoch {
			c.fenced.Add(1)
			return old, otter.CancelOp
		}
		return v, otter.WriteOp
	})
	return v, false, nil
}

// Invalidate drops key, and stops the loads of key in flight from caching
// what they read.
func (c *Cache[V]) Invalidate(key string) {
	c.fence(key).Add(1) // first, so that a load finishing now sees it
	c.c.Invalidate(key)
	c.invalidations.Add(1)
}

// InvalidateAll drops every entry, and stops every load in flight from
// caching what it read.
func (c *Cache[V]) InvalidateAll() {
	c.epoch.Add(1)
	c.c.InvalidateAll()
	c.resyncs.Add(1)
}

// Apply applies one event of the bus: OpInvalidate drops its key, OpResync
// drops everything. Lease revocations are not the cache's business.
func (c *Cache[V]) Apply(ev syncbus.Event) {
	switch ev.Op {
	case syncbus.OpInvalidate:
		c.Invalidate(ev.Key)
	case syncbus.OpResync:
		c.InvalidateAll()
	}
}

// Follow subscribes to the events of the keys starting with prefix and
// returns a function that applies them until ctx ends or the bus closes.
// The subscription exists when Follow returns, so no event published after
// it is missed; run the function in a goroutine of its own:
//
//	run, err := cache.Follow(ctx, bus, "user:")
//	if err != nil { … }
//	go run()
func (c *Cache[V]) Follow(ctx context.Context, bus syncbus.PrefixSubscriber, prefix string) (run func(), err error) {
	ch, err := bus.SubscribePrefix(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return func() {
		for ev := range ch {
			c.Apply(ev)
		}
	}, nil
}

// Stats returns the cache's counters.
func (c *Cache[V]) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		Invalidations: c.invalidations.Load(), Resyncs: c.resyncs.Load(),
		Fenced: c.fenced.Load(), Size: c.c.EstimatedSize(),
	}
}

// Close stops the cache's background goroutines.
func (c *Cache[V]) Close() { c.c.StopAllGoroutines() }
