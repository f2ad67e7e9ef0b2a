package sim

import (
	"sync"
	"time"
)

// bootGate steers memberlist's state exchanges between newcomers and hubs
// while a large cluster starts, so that it converges in two exchanges per
// node instead of by gossip. memberlist learns members one by one from
// gossip, and each one learnt costs every node a new view of the whole
// cluster: at a thousand nodes that is a billion steps. Two waves avoid
// it:
//
//   - push: a newcomer's exchange with a hub carries the newcomer's state
//     to the hub, but the hub's answer is swallowed and the newcomer sees
//     the connection drop, so it retries later. Each (newcomer, hub) pair
//     pushes once; the hubs come to know everyone.
//   - pull: each newcomer's next try reaches its home hub only (one hub
//     per newcomer, in turn), which now answers with the whole cluster.
//
// A hub serves a bounded number of these exchanges at once and the
// others wait for a place (memberlist drops more than 128 concurrent
// ones after doing the work). Exchanges between hubs, and every exchange
// once the gate is removed, pass untouched.
type bootGate struct {
	hubs    map[*Host]bool
	home    map[*Host]*Host
	slots   map[*Host]chan struct{} // per hub: a place per exchange served
	pulling chan struct{}           // closed when the pull wave starts

	mu     sync.Mutex
	pull   bool
	pushed map[[2]*Host]bool
	pulled map[*Host]bool
}

// gateLimit is how many newcomers' exchanges a hub serves at once.
const gateLimit = 32

func newBootGate(hubs []*Host, newcomers []*Host) *bootGate {
	g := &bootGate{
		hubs:    make(map[*Host]bool, len(hubs)),
		home:    make(map[*Host]*Host, len(newcomers)),
		slots:   make(map[*Host]chan struct{}, len(hubs)),
		pulling: make(chan struct{}),
		pushed:  make(map[[2]*Host]bool),
		pulled:  make(map[*Host]bool),
	}
	for _, h := range hubs {
		g.hubs[h] = true
		g.slots[h] = make(chan struct{}, gateLimit)
	}
	for i, n := range newcomers {
		g.home[n] = hubs[i%len(hubs)]
	}
	return g
}

// startPull moves the gate to its second wave.
func (g *bootGate) startPull() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.pull {
		g.pull = true
		close(g.pulling)
	}
}

// admit decides on a stream from one host to another: refused, or
// admitted (and then holding one of the hub's places until released),
// push-only or not. A newcomer that pushed to its home hub already waits
// here for the pull wave rather than fail, so that it pulls as soon as
// the wave starts instead of after memberlist's growing retry delay. A
// stream the gate does not steer is admitted at once, uncounted. Waiting
// ends with done or after timeout.
func (g *bootGate) admit(from, to *Host, done <-chan struct{}, timeout time.Duration) (ok, counted, pushOnly bool) {
	if !g.hubs[to] || g.hubs[from] {
		return true, false, false
	}
	deadline := time.NewTimer(timeout) // the dial's own timeout, not synchronisation
	defer deadline.Stop()
	g.mu.Lock()
	if !g.pull && g.pushed[[2]*Host{from, to}] {
		g.mu.Unlock()
		if g.home[from] != to {
			return false, false, false
		}
		select {
		case <-g.pulling:
		case <-done:
			return false, false, false
		case <-deadline.C:
			return false, false, false
		}
		g.mu.Lock()
	}
	if g.pull && (g.home[from] != to || g.pulled[from]) {
		g.mu.Unlock()
		return false, false, false
	}
	g.mu.Unlock()
	select {
	case g.slots[to] <- struct{}{}:
	case <-done:
		return false, false, false
	case <-deadline.C:
		return false, false, false
	}
	g.mu.Lock()
	pull := g.pull
	stale := pull && (g.home[from] != to || g.pulled[from])
	g.mu.Unlock()
	if stale {
		g.release(to)
		return false, false, false
	}
	return true, true, !pull
}

// answered records that the hub answered a newcomer's exchange: its push
// arrived (push wave) or its pull is on its way (pull wave).
func (g *bootGate) answered(from, to *Host, pushOnly bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if pushOnly {
		g.pushed[[2]*Host{from, to}] = true
	} else {
		g.pulled[from] = true
	}
}

// release gives a hub's place back.
func (g *bootGate) release(to *Host) { <-g.slots[to] }
