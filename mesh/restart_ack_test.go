package mesh_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// restartRounds is how many times TestNoFalseAckAcrossRestarts kills and
// restarts its victim.
const restartRounds = 20

// TestNoFalseAckAcrossRestarts: an acknowledgement promises that the
// acking node applied the event, whatever its restarts. A receiver running
// in a child process is SIGKILLed and restarted under the same name, again
// and again; awaited publishes that need it start while it is dead, before
// the publisher notices, and complete, if at all, through its new
// incarnation. Every ack report is checked against what each process
// logged it delivered: no report may name a node none of whose processes
// delivered the key. (The old incarnation is dead when those publishes
// start, so a report naming the node can only come from the new one, which
// lives on and logs everything it delivers.) Before the fix, the new
// incarnation took these events for duplicates of ones its window started
// after, did not deliver them, and acked them anyway: every such publish
// returned a false success.
func TestNoFalseAckAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a child process many times")
	}
	// Most of its time is spent waiting for processes and membership: it
	// runs beside the other parallel tests, after every test that checks
	// for leaked goroutines has finished.
	t.Parallel()
	pub := startProcPublisher(t, "fa-p", "a", "local", true)
	seed := pub.Addr().String()
	cfg := func(name, zone string, port int) nodeProcConfig {
		return nodeProcConfig{Name: name, Zone: zone, Seed: seed, Fast: true, Prefix: "fa:", Port: port}
	}
	stable := startNodeProc(t, cfg("fa-b", "b", 0))
	victim := startNodeProc(t, cfg("fa-c", "c", 0))
	up := func(p *nodeProc, zone string) netip.AddrPort {
		t.Helper()
		addr := p.addr(t, 30*time.Second)
		warptest.Eventually(t, 30*time.Second, func() bool { return hasMember(pub, p.name, zone, addr, syncbus.MemberAlive) },
			"the publisher to see %s alive at %s", p.name, addr)
		return netip.MustParseAddrPort(addr)
	}
	up(stable, "b")
	// The victim comes back where it was, as a restarted service does: at
	// another address, memberlist would take the new incarnation for an
	// impostor until the old one is declared failed.
	port := int(up(victim, "c").Port())
	procs := map[string][]*nodeProc{"fa-b": {stable}, "fa-c": {victim}}

	type result struct {
		key    string
		report syncbus.AckReport
		err    error
	}
	var results []result
	delivered := func(node, key string) bool {
		for _, p := range procs[node] {
			if _, ok := p.out.find(func(f []string) bool { return len(f) >= 2 && f[0] == "event" && f[1] == key }); ok {
				return true
			}
		}
		return false
	}
	// check verifies the reports of the publishes from checked on: a
	// child logs a delivery when its reader takes the event, a moment
	// after the ack left, so it is done before the next kill, not after.
	// ackedUnsubscribed reports whether node's latest process, the one
	// started in the round being checked, acknowledged events before it
	// had subscribed: one restarted at its old address hears the
	// retransmissions meant for its predecessor, and acks them rightly (it
	// holds nothing stale) without logging them.
	ackedUnsubscribed := func(node string) bool {
		ps := procs[node]
		_, ok := ps[len(ps)-1].out.find(func(f []string) bool { return len(f) == 2 && f[0] == "subscribed" && f[1] != "0" })
		return ok
	}
	checked, succeeded, viaNew, unverifiable := 0, 0, 0, 0
	check := func() {
		for _, r := range results[checked:] {
			if r.err != nil {
				continue
			}
			succeeded++
			for _, n := range r.report.Nodes {
				if !warptest.WaitFor(5*time.Second, func() bool { return delivered(n, r.key) }) {
					if ackedUnsubscribed(n) {
						unverifiable++
						t.Logf("%s acked %s without logging it: a process of %s acknowledged events before it subscribed", n, r.key, n)
						continue
					}
					t.Errorf("false acknowledgement: %s is in the ack report of %s, yet no process of %s delivered it", n, r.key, n)
				}
				if n == "fa-c" {
					viaNew++
				}
			}
		}
		checked = len(results)
	}
	for round := range restartRounds {
		victim.kill(t)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 5 {
			key := fmt.Sprintf("fa:%d:%d", round, i)
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var rep syncbus.AckReport
				err := pub.PublishAndAwait(ctx, key, 2, syncbus.WithAckReport(&rep))
				mu.Lock()
				results = append(results, result{key, rep, err})
				mu.Unlock()
			})
		}
		victim = startNodeProc(t, cfg("fa-c", "c", port))
		procs["fa-c"] = append(procs["fa-c"], victim)
		wg.Wait()
		up(victim, "c")
		check()
	}
	t.Logf("%d restarts, %d awaited publishes, %d succeeded (%d acked by a restarted incarnation, %d of them possibly before it subscribed), the others failed with the typed error",
		restartRounds, len(results), succeeded, viaNew, unverifiable)
	if viaNew == 0 {
		t.Error("no awaited publish was ever acknowledged by a restarted incarnation: the test did not exercise the restart")
	}
}
