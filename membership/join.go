package membership

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	resolveTimeout  = 5 * time.Second
	joinParallelism = 4
	firstJoinRetry  = 250 * time.Millisecond
	maxJoinRetry    = 30 * time.Second
)

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// joinLoop joins the seeds, retrying with a growing delay until one
// answers, then rejoins every RejoinInterval: memberlist forgets a failed
// node once GossipToTheDeadTime has passed and never contacts it again, so
// without this two halves of a long partition would stay apart after the
// network heals.
func (m *Membership) joinLoop() {
	defer m.wg.Done()
	maxDelay := maxJoinRetry
	if m.cfg.RejoinInterval > 0 {
		maxDelay = m.cfg.RejoinInterval
	}
	retry := newBackoff(min(firstJoinRetry, maxDelay), maxDelay)
	for len(m.cfg.Seeds) > 0 && !m.leftLocal.Load() {
		resolved := m.resolveSeeds()
		targets := m.exceptSelf(slices.Clone(resolved))
		if len(resolved) > 0 && len(targets) == 0 {
			break // this node is the only seed: it starts the cluster
		}
		if len(targets) > 0 && m.joinAll(targets, nil) > 0 {
			if !m.settle() {
				return
			}
			break
		}
		m.log.Log(slog.LevelWarn, "membership: no seed answered yet; retrying", "seeds", m.cfg.Seeds)
		if !retry.wait(m.done) {
			return
		}
	}
	if m.cfg.RejoinInterval < 0 {
		return
	}
	tick := time.NewTicker(m.cfg.RejoinInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-tick.C:
		}
		if m.leftLocal.Load() {
			return
		}
		m.heal()
	}
}

// settleRounds is how many times settle exchanges state with a seed.
const settleRounds = 4

// settle exchanges state with one seed again a few times after the first
// join, 2, 4, 8 and 16 probe intervals later. Nodes that start together
// then learn of each other from the seeds, which every one of them
// contacted, instead of from gossip alone: gossip now and then misses a
// member among many simultaneous joins, and memberlist's periodic state
// exchange, the only other cure, comes a minute or more later at scale.
// It reports false when the Membership closed meanwhile.
func (m *Membership) settle() bool {
	delay := 2 * m.cfg.ProbeInterval
	for range settleRounds {
		t := time.NewTimer(delay)
		select {
		case <-m.done:
			t.Stop()
			return false
		case <-t.C:
		}
		targets := m.exceptSelf(m.resolveSeeds())
		if len(targets) == 0 {
			return true
		}
		m.joinOne(targets[rand.IntN(len(targets))])
		delay *= 2
	}
	return true
}

// heal joins the seeds and the recently failed members that are not
// members now.
func (m *Membership) heal() {
	targets := rejoinTargets(m.resolveSeeds(), m.failedMembers(), m.Snapshot(), maxRejoinTargets)
	if len(targets) == 0 {
		return
	}
	if n := m.joinAll(targets, &m.rejoined); n > 0 {
		m.log.Log(slog.LevelInfo, "membership: rejoined", "contacted", n, "tried", len(targets))
	}
}

// rejoinTargets chooses whom to join: every seed address and every failed
// member's address, except the local node's own, the addresses of alive
// members and failed members whose name is alive again (at another
// address). Seeds come first, then failed members newest first; at most
// limit addresses.
func rejoinTargets(seeds []netip.AddrPort, failed []downAddr, snap *Snapshot, limit int) []netip.AddrPort {
	skip := make(map[netip.AddrPort]bool, len(snap.Nodes))
	skip[snap.Local.Addr] = true
	alive := make(map[string]bool, len(snap.Nodes))
	for _, n := range snap.Nodes {
		if n.State.Alive() {
			skip[n.Addr] = true
			alive[n.Name] = true
		}
	}
	var out []netip.AddrPort
	add := func(a netip.AddrPort) {
		if len(out) < limit && a.IsValid() && !skip[a] {
			skip[a] = true
			out = append(out, a)
		}
	}
	for _, a := range seeds {
		add(a)
	}
	for _, d := range failed {
		if !alive[d.name] {
			add(d.addr)
		}
	}
	return out
}

// resolveSeeds resolves the seeds now: a name that resolves to several
// addresses yields all of them, a name whose addresses changed (a restarted
// pod) yields the new ones, and a "dnssrv+" seed yields the hosts and ports
// its SRV records name at this moment. A seed that cannot be resolved is
// logged and skipped: the others may still answer.
func (m *Membership) resolveSeeds() []netip.AddrPort {
	ctx, cancel := context.WithTimeout(m.ctx, resolveTimeout)
	defer cancel()
	r := seedResolver{lookup: m.lookup, lookupSRV: systemLookupSRV}
	var out []netip.AddrPort
	for _, s := range m.cfg.Seeds {
		sd, err := parseSeed(s)
		if err != nil {
			continue // validated in New
		}
		addrs, err := r.resolve(ctx, sd)
		if err != nil {
			m.log.Log(slog.LevelWarn, "membership: cannot resolve seed", "seed", s, "err", err)
		}
		out = append(out, addrs...)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

func (m *Membership) exceptSelf(addrs []netip.AddrPort) []netip.AddrPort {
	return slices.DeleteFunc(addrs, func(a netip.AddrPort) bool { return a == m.self })
}

// joinAll joins the addresses, a few at a time (an unreachable one costs
// memberlist's TCP timeout), and returns how many answered. Each success
// is also counted in joined, if not nil, as soon as it happens.
func (m *Membership) joinAll(addrs []netip.AddrPort, joined *atomic.Uint64) int {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		work = make(chan netip.AddrPort)
	)
	for range min(joinParallelism, len(addrs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if m.joinOne(a) {
					if joined != nil {
						joined.Add(1)
					}
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	for _, a := range addrs {
		select {
		case work <- a:
		case <-m.done:
		}
	}
	close(work)
	wg.Wait()
	return ok
}

func (m *Membership) joinOne(a netip.AddrPort) bool {
	m.joinAttempts.Add(1)
	if _, err := m.ml.Join([]string{a.String()}); err != nil {
		m.joinFailures.Add(1)
		m.log.Log(slog.LevelDebug, "membership: join failed", "addr", a, "err", err)
		return false
	}
	return true
}
