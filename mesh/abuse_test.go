package mesh_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// The tests in this file load a running mesh far beyond normal traffic —
// floods of distinct keys and of data (and, in abuse_flood_test.go, of
// invalid datagrams) — and check that it keeps
// its promises under them: healthy nodes stay alive in every member's
// eyes, events and acknowledgements still get through, what is refused is
// counted, and memory and goroutines stay bounded. The flood sizes differ
// with and without the race detector (abuse_race_test.go,
// abuse_norace_test.go).

var secThreeNodes = []bustest.Node{{Name: "a", Zone: "z1"}, {Name: "b", Zone: "z1"}, {Name: "c", Zone: "z2"}}

// secTimings gives the nodes of a flood test failure-detection timings
// with room for a test process whose two cores the flood saturates (and
// for a shared, noisy machine): a suspicion must come from what the flood
// does to a node, not from the scheduler. They still probe several times
// a second, so a flood of a few seconds spans many probe rounds.
func secTimings(_ int, o *mesh.MeshOptions) {
	mesh.MembershipTimings(o, 300*time.Millisecond, 200*time.Millisecond, 4)
}

// secLocalTimings gives the nodes the failure detector of the "local"
// profile they run (memberlist's local preset: a probe a second, 200ms
// for its ack, suspicion multiplier 3) instead of FastMembership's.
func secLocalTimings(_ int, o *mesh.MeshOptions) {
	mesh.MembershipTimings(o, time.Second, 200*time.Millisecond, 3)
}

// secKeyPad makes the flood's keys long (secKeyLen bytes), so that a
// structure keeping a copy of every key would show in the heap at once.
var secKeyPad = strings.Repeat("k", secKeyLen-len("flood:0000000:"))

func secFloodKey(i int) string { return fmt.Sprintf("flood:%07d:%s", i, secKeyPad) }

// TestDistinctKeyFloodIsBounded publishes secKeyFlood distinct keys of
// secKeyLen bytes, as fast as one goroutine can, from one node of three
// whose subscribers never read: on every node, exact-key subscriptions of
// a hundred of those keys and a prefix subscription covering them all.
//
// Every Publish returns. Each exact-key subscription holds one event of
// its key; each prefix subscription holds its buffer's worth of events and
// then one resync, and the publisher counts every other event as dropped.
// Goroutines stay as they were.
//
// The heap grows by less than heapBound over the flood, after a warm-up
// that fills the bounded structures. What may legitimately grow after it
// is the send queue's spare capacity (two slices of at most 65536 events
// of 112 bytes, which append may round up: about 18 MB in all), the
// receive windows' maps of out-of-order numbers (up to 65536 entries
// each) and pooled buffers: 32 MB is generous for that. Keeping a copy of
// every key on the three nodes would take secKeyFlood × secKeyLen × 3 =
// 180 MB, so the bound still catches it. (The lighter flood run under the
// race detector does not check the heap.)
func TestDistinctKeyFloodIsBounded(t *testing.T) {
	const (
		prefixBuffer = 256
		exactKeys    = 100
		heapBound    = 32 << 20
	)
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	buses := startCluster(t, secThreeNodes, func(i int, o *mesh.MeshOptions) {
		secTimings(i, o)
		o.PrefixBuffer = prefixBuffer
		// A small repair ring fills during the warm-up, so that what it
		// holds does not count as growth (its cost is more resyncs).
		o.RepairBuffer = 4096
	})
	a := buses[0]
	ctx := ctxTimeout(t, 5*time.Minute)
	exact := make([][]<-chan syncbus.Event, len(buses))
	prefix := make([]<-chan syncbus.Event, len(buses))
	for i, b := range buses {
		for k := range exactKeys {
			ch, err := b.Subscribe(ctx, secFloodKey(k*(secKeyFlood/exactKeys)))
			if err != nil {
				t.Fatal(err)
			}
			exact[i] = append(exact[i], ch)
		}
		ch, err := b.SubscribePrefix(ctx, "flood:")
		if err != nil {
			t.Fatal(err)
		}
		prefix[i] = ch
	}

	flood := func(from, to int) {
		t.Helper()
		mark := fmt.Sprintf("flood:mark:%d", to)
		var marks []<-chan syncbus.Event
		for _, b := range buses[1:] {
			ch, err := b.Subscribe(ctx, mark)
			if err != nil {
				t.Fatal(err)
			}
			marks = append(marks, ch)
		}
		for i := from; i < to; i++ {
			if err := a.Publish(ctx, secFloodKey(i)); err != nil {
				t.Fatalf("Publish %d: %v", i, err)
			}
		}
		// Once the batcher is idle and both receivers have the mark,
		// everything has been sent and what they missed is being
		// repaired. (The mark alone does not say so: a digest may
		// announce it before it is sent, and a repair deliver it early.)
		if err := a.Publish(ctx, mark); err != nil {
			t.Fatal(err)
		}
		warptest.Eventually(t, 60*time.Second, a.BatcherIdle, "%s", "the publisher's send queue to drain")
		for i, ch := range marks {
			recv(t, ch, 60*time.Second)
			if err := buses[i+1].Unsubscribe(ctx, mark, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two warm-up rounds of keys no exact subscription has: the first
	// grows the bounded structures, the second the queues' spare
	// capacity, which the first may leave short of their peak.
	warm := secKeyWarm
	flood(secKeyFlood, secKeyFlood+warm)
	flood(secKeyFlood+warm, secKeyFlood+2*warm)
	goroutines, heap := runtime.NumGoroutine(), secHeapInuse()
	flood(0, secKeyFlood)
	grown := int64(secHeapInuse()) - int64(heap)

	t.Logf("heap in use grew by %d bytes over %d distinct keys", grown, secKeyFlood)
	if secCheckHeap && grown > heapBound {
		t.Errorf("heap grew by %d bytes over the flood of %d keys, bound %d", grown, secKeyFlood, heapBound)
	}
	warptest.Eventually(t, 5*time.Second, func() bool {
		return runtime.NumGoroutine() <= goroutines+2
	}, "%s", "goroutines back to their number before the flood")

	// A last event of each exact key, awaited, so that every node has it.
	// (Which of the key's events a subscription holds is
	// TestBugRepairedEventDisplacesNewerOne's subject.)
	for k := range exactKeys {
		if err := a.PublishAndAwait(ctx, secFloodKey(k*(secKeyFlood/exactKeys)), 2); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range buses {
		for k, ch := range exact[i] {
			select {
			case ev := <-ch:
				if ev.Key != secFloodKey(k*(secKeyFlood/exactKeys)) || ev.Op != syncbus.OpInvalidate {
					t.Fatalf("%s: exact subscription %d holds %v of %.20q, want an event of its key", b.Name(), k, ev.Op, ev.Key)
				}
			default:
				t.Fatalf("%s: exact subscription %d holds nothing", b.Name(), k)
			}
		}
		// The prefix subscription: its buffer's worth of events, then one
		// resync for the rest. (On a receiver, a resync for a gap that
		// could not be repaired may come among the events; the last thing
		// held is always a resync.)
		held := len(prefix[i])
		var events, resyncs int
		var last syncbus.Event
		for range held {
			last = <-prefix[i]
			if last.Op == syncbus.OpResync {
				resyncs++
				if last.Key != "flood:" {
					t.Errorf("%s: resync for %q, want the prefix", b.Name(), last.Key)
				}
			} else {
				events++
			}
		}
		if held != prefixBuffer+1 || last.Op != syncbus.OpResync || events+resyncs != held {
			t.Errorf("%s: prefix subscription held %d events and %d resyncs, last %v; want %d events then a resync",
				b.Name(), events, resyncs, last.Op, prefixBuffer)
		}
		if b == a && (events != prefixBuffer || resyncs != 1) {
			t.Errorf("publisher: prefix subscription held %d events and %d resyncs, want %d and 1", events, resyncs, prefixBuffer)
		}
	}
	m := a.Metrics()
	total := uint64(2*warm + secKeyFlood + exactKeys + 3) // and the three marks
	if want := total - prefixBuffer; m.Dropped != want {
		t.Errorf("publisher counted %d prefix drops, want %d", m.Dropped, want)
	}
	if m.Published != total {
		t.Errorf("publisher counted %d published, want %d", m.Published, total)
	}
	secCloseAll(t, buses...)
}

// TestDataFloodDoesNotStarveMembership has two nodes of three publish as
// fast as they can for secDataFlood, saturating every receive queue and
// the test process's cores. Membership traffic has its own queue on every
// node and never rides the data plane's, so no node becomes suspect or
// fails, and awaiting publishes still succeed once the flood stops.
//
// The nodes run the failure detector of their profile (secLocalTimings),
// not FastMembership's. This flood delays pings and acks by up to a few
// hundred milliseconds: the data fills each node's socket buffer
// (megabytes, on the port gossip shares) and they queue behind it. Direct
// probes with a 200ms timeout then often fail; with a probe a second,
// memberlist's indirect and TCP probes have time to vouch for the node,
// but with a probe every 300ms they do not, and nodes become suspect.
func TestDataFloodDoesNotStarveMembership(t *testing.T) {
	var wg sync.WaitGroup
	secLeakCheck(t, &wg)
	buses := startCluster(t, secThreeNodes, secLocalTimings)
	watches := secWatchAll(buses, &wg)
	ctx := ctxTimeout(t, 2*time.Minute)

	stop := make(chan struct{})
	var pubs sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for p := range 2 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := buses[p].Publish(ctx, fmt.Sprintf("data:%d:%d", p, i%4096)); err != nil {
					errs[p] = err
					return
				}
				counts[p]++
			}
		}()
	}
	timer := time.NewTimer(secDataFlood)
	<-timer.C // how long the load runs, not a synchronisation
	close(stop)
	pubs.Wait()
	for p, err := range errs {
		if err != nil {
			t.Errorf("publisher %s: %v", buses[p].Name(), err)
		}
	}
	t.Logf("published %d and %d events in %v", counts[0], counts[1], secDataFlood)

	for i, b := range buses {
		if err := b.PublishAndAwait(ctx, fmt.Sprintf("data:after:%d", i), 2); err != nil {
			t.Errorf("%s: PublishAndAwait after the flood: %v", b.Name(), err)
		}
	}
	secCheckHealthy(t, buses, watches, len(buses), "during the data flood")
	for _, b := range buses {
		tr := b.Membership().Transport().(*membership.NetTransport)
		t.Logf("%s: %+v", b.Name(), tr.Stats())
	}
	secCloseAll(t, buses...)
}
