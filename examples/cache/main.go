// Command cache shows how a Go service keeps an L1 cache coherent with
// Warp: three services in three zones on this machine, each with an otter
// cache in front of one slow database, joined by a Warp Mesh.
//
//	go run ./examples/cache
//
// The wiring is in package l1 beside this file: a subscription to the
// cached keys whose OpInvalidate events call Invalidate and whose OpResync
// events call InvalidateAll, and a version fence so that a read that raced
// an invalidation cannot put a stale value back. The writer updates the
// database, then publishes the key with PublishAndAwaitTopology(ctx, key,
// 2): when it returns, two zones have dropped their copy.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/warpmesh/warp/examples/cache/l1"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cache:", err)
		os.Exit(1)
	}
}

// database is the source of truth: rows behind a delay. A test can hold a
// read after it took its value, to play a slow read.
type database struct {
	mu   sync.Mutex
	rows map[string]string
	hold func() // called after a read took its value; nil: no hold
}

func (d *database) get(ctx context.Context, key string) (string, error) {
	d.mu.Lock()
	v, hold := d.rows[key], d.hold
	d.mu.Unlock()
	if hold != nil {
		hold()
	}
	select {
	case <-time.After(5 * time.Millisecond): // a network round trip
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return v, nil
}

func (d *database) set(key, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows[key] = value
}

// service is one instance of the application: a mesh node and its cache.
type service struct {
	bus   *mesh.MeshBus
	cache *l1.Cache[string]
	stop  context.CancelFunc
	done  chan struct{}
}

func run(ctx context.Context, out io.Writer) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	db := &database{rows: map[string]string{"user:42": "Ada Lovelace"}}

	var services []*service
	defer func() {
		for _, s := range services {
			s.stop()
			_ = s.bus.Close()
			<-s.done
			s.cache.Close()
		}
	}()
	for i, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		opts := mesh.MeshOptions{
			NodeName:   fmt.Sprintf("svc-%d", i+1),
			BindAddr:   "127.0.0.1",
			Port:       -1, // any free port
			Zone:       zone,
			SecretKeys: [][]byte{key},
			Profile:    "local",
		}
		if i > 0 {
			opts.Peers = []string{services[0].bus.Addr().String()}
		}
		bus, err := mesh.NewMeshBus(opts)
		if err != nil {
			return err
		}
		cache, err := l1.New(10_000, db.get)
		if err != nil {
			_ = bus.Close()
			return err
		}
		// Subscribe before serving reads, so that no invalidation is missed.
		subCtx, stop := context.WithCancel(ctx)
		follow, err := cache.Follow(subCtx, bus, "user:")
		if err != nil {
			stop()
			_ = bus.Close()
			return err
		}
		s := &service{bus: bus, cache: cache, stop: stop, done: make(chan struct{})}
		go func() { defer close(s.done); follow() }()
		services = append(services, s)
	}
	for _, s := range services {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := s.bus.WaitForMembers(wctx, len(services))
		cancel()
		if err != nil {
			return err
		}
	}

	read := func(s *service) string {
		v, hit, err := s.cache.Get(ctx, "user:42")
		if err != nil {
			return err.Error()
		}
		how := "miss"
		if hit {
			how = "hit"
		}
		return fmt.Sprintf("%q (%s)", v, how)
	}
	fmt.Fprintln(out, "Every service reads user:42 twice:")
	for _, s := range services {
		first := read(s)
		fmt.Fprintf(out, "  %s: %s, then %s\n", s.bus.Name(), first, read(s))
	}

	// The writer: update the source of truth, then invalidate.
	writer := services[0]
	db.set("user:42", "Ada King")
	var rep syncbus.AckReport
	start := time.Now()
	if err := writer.bus.PublishAndAwaitTopology(ctx, "user:42", 2, syncbus.WithAckReport(&rep)); err != nil {
		return err
	}
	fmt.Fprintf(out, "svc-1 wrote user:42 and invalidated it: zones %v dropped their copy within %v.\n", rep.Zones, time.Since(start).Round(time.Microsecond))
	// The ack says the event reached each service's subscription; its
	// cache applies it a moment later.
	if err := waitUntil(ctx, func() bool {
		for _, s := range services {
			if s.cache.Stats().Invalidations == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for _, s := range services {
		fmt.Fprintf(out, "  %s now reads %s\n", s.bus.Name(), read(s))
	}

	// The race the fence is for: svc-2 starts reading user:42 before a
	// write and finishes after the write's invalidation reached it.
	reader := services[1]
	reader.cache.Invalidate("user:42")
	took, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	db.mu.Lock()
	db.hold = func() { once.Do(func() { close(took); <-resume }) }
	db.mu.Unlock()
	slowRead := make(chan string)
	go func() {
		v, _, _ := reader.cache.Get(ctx, "user:42")
		slowRead <- v
	}()
	<-took // the slow read holds "Ada King"
	db.mu.Lock()
	db.hold = nil
	db.mu.Unlock()
	db.set("user:42", "Ada, Countess of Lovelace")
	fenced := reader.cache.Stats().Invalidations
	if err := writer.bus.PublishAndAwait(ctx, "user:42", 2); err != nil {
		close(resume)
		<-slowRead
		return err
	}
	if err := waitUntil(ctx, func() bool { return reader.cache.Stats().Invalidations > fenced }); err != nil {
		close(resume)
		<-slowRead
		return err
	}
	close(resume)
	fmt.Fprintf(out, "A read of svc-2 that started before the next write returned %q after its invalidation;\n", <-slowRead)
	fmt.Fprintf(out, "  the fence kept it out of the cache (fenced loads: %d), so svc-2 next reads %s\n", reader.cache.Stats().Fenced, read(reader))
	return nil
}

// waitUntil polls cond for up to ten seconds.
func waitUntil(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
