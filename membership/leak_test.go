package membership

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership/membershiptest"
)

// TestCloseStopsEveryGoroutine runs a cluster through joins, a leave and a
// crash, closes it, and checks that no goroutine is left but memberlist's
// documented stragglers, which must then end too.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	base := goleak.IgnoreCurrent()
	func() {
		nodes := startCluster(t, "l", 3, nil)
		waitConverged(t, nodes, 15*time.Second)
		if err := nodes[1].Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		nodes[2].shutdown(false)
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}()
	if err := goleak.Find(append(membershiptest.LeakOptions(), base)...); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
	// The stragglers end within memberlist's probe interval.
	if !warptest.WaitFor(5*time.Second, func() bool { return goleak.Find(base) == nil }) {
		t.Errorf("memberlist's goroutines outlived its timers: %v", goleak.Find(base))
	}
}

func TestFailedNewLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	taken := newTestTransport(t, nil)
	c := testConfig("clash")
	c.BindPort = int(taken.Addr().Port()) // in use: the transport cannot bind
	if _, err := New(c); err == nil {
		t.Fatal("New bound a port in use")
	}
	c = testConfig("badseed")
	c.Seeds = []string{"[::1"}
	if _, err := New(c); !errors.Is(err, ErrConfig) {
		t.Fatalf("New: %v, want ErrConfig", err)
	}
	if err := taken.Shutdown(); err != nil {
		t.Fatal(err)
	}
}
