// Package gatewaytest is the scenario every gateway setup of this module
// runs: two regions, each with its own local bus (a mesh, say), joined
// through a remote bus (a broker) by several gateways per region, one of
// which restarts mid-stream. Every node must receive every event it should
// exactly once: the events of its own region (global and local scope),
// and the global events of the other region; no event loops back.
//
// It imports syncbus and internal/warptest only; it takes the buses and the gateway as
// functions, so package bridge's own tests and those of every transport
// run the same scenario. Production code never imports it.
package gatewaytest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// Setup is what a transport provides.
type Setup struct {
	// Local returns a function that adds a node named name to region's
	// local bus (a new cluster per call of Local), and registers its Close
	// with t.Cleanup. The bus must implement syncbus.AllSubscriber,
	// syncbus.Relayer and syncbus.MemberLister.
	Local func(t *testing.T, region string) func(name string) syncbus.Bus
	// Remote returns a function that adds a node named name, of region, to
	// one remote bus that both regions share.
	Remote func(t *testing.T) func(name, region string) syncbus.Bus
	// Gateway starts a gateway between a local and a remote node.
	Gateway func(t *testing.T, local, remote syncbus.Bus) io.Closer
	// Gateways is the number of gateways per region (default 3).
	Gateways int
	// Events is the number of global events each service node publishes
	// (default 30), half before the restart of a gateway and half after;
	// it publishes a fifth as many local ones.
	Events int
	// Timeout bounds each wait (default 20s).
	Timeout time.Duration
}

// node is one node of the scenario with what it received.
type node struct {
	name, region string
	bus          syncbus.Bus
	close        func()
	since        int // the number of events published before it started
	mu           sync.Mutex
	got          map[string][]syncbus.EventID // by key, every delivery
	resyncs      int
	done         chan struct{}
}

func (n *node) read(ch <-chan syncbus.Event) {
	defer close(n.done)
	for ev := range ch {
		n.mu.Lock()
		if ev.Op == syncbus.OpResync {
			n.resyncs++
		} else {
			n.got[ev.Key] = append(n.got[ev.Key], ev.ID)
		}
		n.mu.Unlock()
	}
}

// Run runs the scenario.
func Run(t *testing.T, s Setup) {
	t.Helper()
	if s.Gateways <= 0 {
		s.Gateways = 3
	}
	if s.Events <= 0 {
		s.Events = 30
	}
	if s.Timeout <= 0 {
		s.Timeout = 20 * time.Second
	}
	regions := []string{"ra", "rb"}
	remote := s.Remote(t)
	type region struct {
		services []*node
		gwLocal  []*node
		gwRemote []*node
		gateways []io.Closer
		join     func(string) syncbus.Bus
	}
	var all []*node
	var pubs []published
	start := func(name, reg string, b syncbus.Bus) *node {
		t.Helper()
		n := &node{name: name, region: reg, bus: b, since: len(pubs), got: map[string][]syncbus.EventID{}, done: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := b.(syncbus.AllSubscriber).SubscribeAll(ctx)
		if err != nil {
			cancel()
			t.Fatalf("%s: SubscribeAll: %v", name, err)
		}
		go n.read(ch)
		n.close = func() { cancel(); <-n.done }
		t.Cleanup(n.close)
		all = append(all, n)
		return n
	}
	rs := map[string]*region{}
	for _, reg := range regions {
		r := &region{join: s.Local(t, reg)}
		for i := range 3 {
			name := fmt.Sprintf("%s-svc%d", reg, i)
			r.services = append(r.services, start(name, reg, r.join(name)))
		}
		for i := range s.Gateways {
			name := fmt.Sprintf("%s-gw%d", reg, i)
			r.gwLocal = append(r.gwLocal, start(name, reg, r.join(name)))
			rname := fmt.Sprintf("%s-gw%d-remote", reg, i)
			r.gwRemote = append(r.gwRemote, start(rname, "remote", remote(rname, reg)))
		}
		rs[reg] = r
	}
	// Every bus knows its members before the gateways start: a gateway
	// tells the events of its region by their origin.
	for _, n := range all {
		want := 3 + s.Gateways
		if n.region == "remote" {
			want = 2 * s.Gateways
		}
		waitMembers(t, n, want, s.Timeout)
	}
	for _, reg := range regions {
		r := rs[reg]
		for i := range s.Gateways {
			r.gateways = append(r.gateways, s.Gateway(t, r.gwLocal[i].bus, r.gwRemote[i].bus))
		}
	}
	t.Cleanup(func() {
		for _, reg := range regions {
			for _, g := range rs[reg].gateways {
				_ = g.Close()
			}
		}
	})

	publish := func(from int, half int) {
		t.Helper()
		for _, reg := range regions {
			for si, svc := range rs[reg].services {
				if si != from && from >= 0 {
					continue
				}
				for i := range s.Events / 2 {
					for _, global := range []bool{true, false} {
						if !global && i%5 != 0 {
							continue
						}
						key := fmt.Sprintf("%s/%s/%d/%d/%v", reg, svc.name, half, i, global)
						opts := []syncbus.PublishOption{}
						if global {
							opts = append(opts, syncbus.WithScope(syncbus.ScopeGlobal))
						}
						ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
						err := svc.bus.Publish(ctx, key, opts...)
						cancel()
						if err != nil {
							t.Fatalf("%s: Publish(%s): %v", svc.name, key, err)
						}
						pubs = append(pubs, published{region: reg, global: global, key: key})
					}
				}
			}
		}
	}
	publish(-1, 0)

	// Restart one gateway of region ra: its buses and the gateway itself.
	r := rs["ra"]
	_ = r.gateways[0].Close()
	for _, n := range []*node{r.gwLocal[0], r.gwRemote[0]} {
		n.close()
		_ = n.bus.(io.Closer).Close()
		all = slices.DeleteFunc(all, func(m *node) bool { return m == n })
	}
	publish(0, 1) // while it is down
	r.gwLocal[0] = start("ra-gw0", "ra", r.join("ra-gw0"))
	r.gwRemote[0] = start("ra-gw0-remote", "remote", remote("ra-gw0-remote", "ra"))
	// Every node knows the restarted ones before anyone publishes again: a
	// publisher sends to the members it knows.
	for _, n := range all {
		want := 3 + s.Gateways
		if n.region == "remote" {
			want = 2 * s.Gateways
		}
		waitMembers(t, n, want, s.Timeout)
	}
	r.gateways[0] = s.Gateway(t, r.gwLocal[0].bus, r.gwRemote[0].bus)
	publish(1, 1)
	publish(2, 1)

	checkAll(t, all, pubs, s.Timeout)
}

// published is one event the scenario published.
type published struct {
	region string
	global bool
	key    string
}

// wants reports whether n must receive p: every event of its own region,
// and the global events of the other; a node of the remote bus only the
// global ones.
func (n *node) wants(p published) bool {
	return p.global || n.region == p.region
}

// checkAll waits until every node has every event it must have, then
// checks that none came twice (under two IDs or one) and none came that
// must not. A node that started late (the restarted gateway's) is only
// held to what was published after it started; it may have caught some
// events still in flight before.
func checkAll(t *testing.T, nodes []*node, pubs []published, timeout time.Duration) {
	t.Helper()
	for _, n := range nodes {
		missing := ""
		warptest.Eventually(t, timeout, func() bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, p := range pubs[n.since:] {
				if n.wants(p) && len(n.got[p.key]) == 0 {
					missing = p.key
					return false
				}
			}
			return true
		}, "%s: never received %s", n.name, func() string { return missing })
	}
	for _, n := range nodes {
		n.mu.Lock()
		for i, p := range pubs {
			got := n.got[p.key]
			switch {
			case len(got) > 1:
				t.Errorf("%s: %s delivered %d times (IDs %v)", n.name, p.key, len(got), got)
			case len(got) == 1 && !n.wants(p):
				t.Errorf("%s: %s (region %s, global %v) crossed to a node that must not have it", n.name, p.key, p.region, p.global)
			case len(got) == 0 && n.wants(p) && i >= n.since:
				t.Errorf("%s: %s missing", n.name, p.key)
			}
		}
		if n.resyncs > 0 {
			t.Errorf("%s: %d resyncs: the scenario loses nothing", n.name, n.resyncs)
		}
		n.mu.Unlock()
	}
}

// waitMembers waits until n's bus lists want alive members.
func waitMembers(t *testing.T, n *node, want int, timeout time.Duration) {
	t.Helper()
	l, ok := n.bus.(syncbus.MemberLister)
	if !ok {
		return
	}
	var ms []syncbus.Member
	warptest.Eventually(t, timeout, func() bool {
		ms = l.Members()
		alive := 0
		for _, m := range ms {
			if m.State.Alive() {
				alive++
			}
		}
		return alive >= want
	}, "%s: fewer than %d members alive: %v", n.name, want, func() string { return fmt.Sprint(ms) })
}
