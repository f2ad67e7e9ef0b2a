package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
)

// TestIdleBusNeverWaits: with a BatchInterval far longer than any delivery
// takes, events published one at a time (each delivered before the next)
// still leave at once: only a loaded bus lingers.
func TestIdleBusNeverWaits(t *testing.T) {
	buses := startCluster(t, fiveInZones[:2], func(_ int, o *mesh.MeshOptions) {
		o.BatchInterval = time.Second
	})
	ctx := ctxTimeout(t, 20*time.Second)
	sub, err := buses[1].Subscribe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		start := time.Now()
		if err := buses[0].Publish(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		recv(t, sub, 10*time.Second)
		if el := time.Since(start); el >= time.Second {
			t.Fatalf("event %d took %v: the idle bus waited for its BatchInterval", i, el)
		}
	}
}

// TestLoadedBusFillsDatagrams: under a steady moderate rate, lingering for
// up to BatchInterval packs several times more events per datagram than
// sending each drain at once.
func TestLoadedBusFillsDatagrams(t *testing.T) {
	perFrame := func(interval time.Duration) float64 {
		buses := startCluster(t, fiveInZones[:2], func(_ int, o *mesh.MeshOptions) {
			o.BatchInterval = interval
		})
		ctx := ctxTimeout(t, 20*time.Second)
		pace := time.NewTicker(time.Millisecond)
		defer pace.Stop()
		before := buses[0].Metrics().Batches
		const events = 1000
		for i := range events {
			if err := buses[0].Publish(ctx, fmt.Sprintf("k:%d", i)); err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 {
				<-pace.C // about 2 events a millisecond
			}
		}
		warptest.Eventually(t, 10*time.Second, buses[0].BatcherIdle, "%s", "the events to be sent")
		return events / float64(buses[0].Metrics().Batches-before)
	}
	eager := perFrame(time.Nanosecond)
	lingering := perFrame(20 * time.Millisecond)
	t.Logf("events per datagram: %.1f without lingering, %.1f lingering up to 20ms", eager, lingering)
	if lingering < 3*eager {
		t.Errorf("lingering packed %.1f events per datagram, not clearly more than %.1f without", lingering, eager)
	}
}
