package membership

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func TestFiveNodesThreeZonesFromOneSeed(t *testing.T) {
	zones := []string{"z1", "z1", "z2", "z2", "z3"}
	regions := []string{"r1", "r1", "r1", "r2", "r2"}
	nodes := startCluster(t, "n", 5, func(i int, c *Config) {
		c.Zone, c.Region = zones[i], regions[i]
	})
	events := watchEvents(nodes[0])
	waitConverged(t, nodes, 15*time.Second)

	for _, viewer := range nodes {
		snap := viewer.Snapshot()
		if snap.Local.Name != viewer.Name() {
			t.Errorf("%s: local is %q", viewer.Name(), snap.Local.Name)
		}
		for i, n := range nodes {
			got, ok := snap.Lookup(n.Name())
			want := n.Local()
			if !ok || got.Zone != zones[i] || got.Region != regions[i] || got.Addr != want.Addr ||
				got.Boot != want.Boot || got.Proto != ProtocolVersion || got.State != syncbus.MemberAlive {
				t.Errorf("%s sees %s as %+v, want zone %s region %s as announced %+v",
					viewer.Name(), n.Name(), got, zones[i], regions[i], want)
			}
		}
		members := viewer.Members()
		if len(members) != 5 {
			t.Errorf("%s lists %d members", viewer.Name(), len(members))
		}
		for _, m := range members {
			if m.Addr == "" || !m.State.Alive() {
				t.Errorf("%s lists %+v", viewer.Name(), m)
			}
		}
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return events.count(EventJoin, "") >= 4 },
		"the seed reported %d joins, want 4", events.count(EventJoin, ""))
}

func TestCrashIsFailedAndLeaveIsLeft(t *testing.T) {
	nodes := startCluster(t, "c", 4, nil)
	events := watchEvents(nodes[0])
	waitConverged(t, nodes, 15*time.Second)
	crashed, leaver := nodes[3], nodes[2]

	crashed.shutdown(false) // no leave: as if the process died
	warptest.Eventually(t, 20*time.Second, func() bool {
		return sees(nodes[0], syncbus.MemberFailed, crashed.Name()) && sees(nodes[1], syncbus.MemberFailed, crashed.Name())
	}, "crashed node not reported failed:%s", describe(nodes[:2]))

	if err := leaver.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := leaver.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	warptest.Eventually(t, 10*time.Second, func() bool {
		return sees(nodes[0], syncbus.MemberLeft, leaver.Name()) && sees(nodes[1], syncbus.MemberLeft, leaver.Name())
	}, "leaver not reported left:%s", describe(nodes[:2]))
	warptest.Eventually(t, 5*time.Second, func() bool { return sees(leaver, syncbus.MemberLeft, leaver.Name()) },
		"the leaver's own snapshot does not show it left")

	warptest.Eventually(t, 5*time.Second, func() bool {
		return events.count(EventFailed, crashed.Name()) == 1 && events.count(EventLeave, leaver.Name()) == 1
	}, "events: failed %d, left %d", events.count(EventFailed, crashed.Name()), events.count(EventLeave, leaver.Name()))
	if n := events.count(EventFailed, leaver.Name()); n != 0 {
		t.Errorf("the leaver was also reported failed %d times", n)
	}

	// Alive members are still alive.
	if !sees(nodes[0], syncbus.MemberAlive, nodes[1].Name()) && !sees(nodes[0], syncbus.MemberSuspect, nodes[1].Name()) {
		t.Errorf("healthy node lost:%s", describe(nodes[:1]))
	}
	if err := leaver.Close(); err != nil {
		t.Fatal(err)
	}
	if err := leaver.Leave(time.Second); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("Leave after Close: %v, want ErrClosed", err)
	}
	if err := leaver.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Close closed Events, after what was buffered.
	for i := 0; ; i++ {
		if _, open := <-leaver.Events(); !open {
			break
		}
		if i > DefaultEventBuffer {
			t.Fatal("Events still open after Close")
		}
	}
}

func TestLeaveTimeout(t *testing.T) {
	nodes := startCluster(t, "t", 2, nil)
	waitConverged(t, nodes, 15*time.Second)
	// Gossip cannot spread the announcement within a nanosecond.
	if err := nodes[1].Leave(time.Nanosecond); !errors.Is(err, ErrLeaveTimeout) {
		t.Fatalf("Leave: %v, want ErrLeaveTimeout", err)
	}
	// The node has left all the same, and the announcement still spreads.
	warptest.Eventually(t, 10*time.Second, func() bool { return sees(nodes[0], syncbus.MemberLeft, nodes[1].Name()) },
		"the node is not reported left:%s", describe(nodes[:1]))
}

func TestRestartedNodeIsANewIncarnation(t *testing.T) {
	nodes := startCluster(t, "r", 4, nil)
	waitConverged(t, nodes, 15*time.Second)
	old := nodes[3]
	oldSelf := old.Local()
	old.shutdown(false)
	warptest.Eventually(t, 20*time.Second, func() bool {
		return sees(nodes[0], syncbus.MemberFailed, oldSelf.Name) && sees(nodes[1], syncbus.MemberFailed, oldSelf.Name)
	}, "crashed node not reported failed:%s", describe(nodes[:3]))

	events := watchEvents(nodes[0])
	cfg := testConfig(oldSelf.Name) // same name, a new port
	cfg.Seeds = []string{nodes[0].Local().Addr.String()}
	back := startNode(t, cfg)
	self := back.Local()
	if self.Addr == oldSelf.Addr || self.Boot == oldSelf.Boot {
		t.Fatalf("restart kept address %v or boot %x", self.Addr, self.Boot)
	}
	nodes[3] = back
	waitConverged(t, nodes, 20*time.Second)
	for _, n := range nodes {
		got, _ := n.Snapshot().Lookup(self.Name)
		if got.Addr != self.Addr || got.Boot != self.Boot {
			t.Errorf("%s sees the restarted node at %v boot %x, want %v boot %x", n.Name(), got.Addr, got.Boot, self.Addr, self.Boot)
		}
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return events.count(EventJoin, self.Name) >= 1 },
		"no join event for the new incarnation")
}

func TestEncryptedClusterRejectsWrongKey(t *testing.T) {
	key := randomKey(t)
	nodes := startCluster(t, "e", 3, func(i int, c *Config) {
		kr, err := wire.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		c.Keyring = kr
	})
	waitConverged(t, nodes, 15*time.Second)

	wrong, _ := wire.NewKeyring(randomKey(t))
	none, _ := wire.NewKeyring()
	for name, kr := range map[string]*wire.Keyring{"wrong-key": wrong, "no-key": none, "no-keyring": nil} {
		cfg := testConfig(name)
		cfg.Keyring = kr
		cfg.Seeds = []string{nodes[0].Local().Addr.String(), nodes[1].Local().Addr.String()}
		intruder := startNode(t, cfg)
		warptest.Eventually(t, 15*time.Second, func() bool { return intruder.Stats().JoinFailures >= 4 },
			"%s: join not retried: %+v", name, intruder.Stats())
		for _, n := range nodes {
			if _, ok := n.Snapshot().Lookup(name); ok {
				t.Errorf("%s let %s in", n.Name(), name)
			}
		}
		if got := len(intruder.Snapshot().Nodes); got != 1 {
			t.Errorf("%s sees %d nodes:%s", name, got, describe([]*Membership{intruder}))
		}
		if intruder.Stats().JoinAttempts != intruder.Stats().JoinFailures {
			t.Errorf("%s: some join succeeded: %+v", name, intruder.Stats())
		}
	}
}

func TestLabelsKeepClustersApart(t *testing.T) {
	alpha := startCluster(t, "alpha", 2, func(_ int, c *Config) { c.Label = "alpha" })
	beta := startCluster(t, "beta", 2, func(i int, c *Config) {
		c.Label = "beta"
		if i == 1 {
			// Told to join the other cluster too.
			c.Seeds = append(c.Seeds, alpha[0].Local().Addr.String())
		}
	})
	waitConverged(t, alpha, 15*time.Second)
	waitConverged(t, beta, 15*time.Second)
	warptest.Eventually(t, 15*time.Second, func() bool { return beta[1].Stats().JoinFailures >= 3 },
		"the other cluster's seed was not retried: %+v", beta[1].Stats())
	for _, n := range append(alpha, beta...) {
		for _, m := range n.Snapshot().Nodes {
			if !strings.HasPrefix(m.Name, strings.TrimRight(n.Name(), "0123456789")) {
				t.Errorf("%s sees %s of the other cluster", n.Name(), m.Name)
			}
		}
		if len(n.Snapshot().Nodes) != 2 {
			t.Errorf("%s sees %d nodes", n.Name(), len(n.Snapshot().Nodes))
		}
	}
}

func TestUnreadableMetadataIsLeftOut(t *testing.T) {
	nodes := startCluster(t, "m", 3, nil)
	waitConverged(t, nodes, 15*time.Second)
	seed := []string{nodes[0].Local().Addr.String()}

	garbled := testConfig("garbled")
	garbled.Seeds = seed
	garbled.metaOverride = []byte{0xFF, 1, 2, 3}
	future := testConfig("future")
	future.Seeds = seed
	future.metaOverride = appendMeta(nil, nodeMeta{Zone: "z", Boot: 1, Proto: ProtocolVersion + 1})
	bad := []*Membership{startNode(t, garbled), startNode(t, future)}

	warptest.Eventually(t, 15*time.Second, func() bool {
		for _, n := range nodes {
			if n.Stats().BadMetadata < 2 {
				return false
			}
		}
		return true
	}, "bad metadata not counted everywhere")
	for _, n := range nodes {
		for _, b := range bad {
			if _, ok := n.Snapshot().Lookup(b.Name()); ok {
				t.Errorf("%s lists %s", n.Name(), b.Name())
			}
		}
		if len(n.Snapshot().Nodes) != 3 {
			t.Errorf("%s sees %d nodes", n.Name(), len(n.Snapshot().Nodes))
		}
	}
	// The peers with bad metadata still see the good nodes: only they are
	// left out, the cluster is not broken.
	for _, b := range bad {
		warptest.Eventually(t, 10*time.Second, func() bool { return sees(b, syncbus.MemberAlive, names(nodes)...) },
			"%s does not see the cluster", b.Name())
	}
}

func TestOversizeMetadataRejectedByNew(t *testing.T) {
	tr := newTestTransport(t, nil)
	cfg := testConfig("big")
	cfg.Zone = strings.Repeat("z", 250)
	cfg.Region = strings.Repeat("r", 255)
	cfg.Transport = tr
	if _, err := New(cfg); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("New: %v, want ErrMetaTooLarge", err)
	}
	// New owned the transport and shut it down.
	if err := tr.SendDatagram(netip.MustParseAddrPort("127.0.0.1:9"), []byte{wire.Marker}); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("transport still open after New failed: %v", err)
	}
	// Exactly at the limit is fine.
	cfg = testConfig("fits")
	cfg.Zone = strings.Repeat("z", MaxNameLen)
	cfg.Region = strings.Repeat("r", memberlist.MetaMaxSize-len(appendMeta(nil, nodeMeta{Zone: cfg.Zone}))-1)
	if n := len(appendMeta(nil, nodeMeta{Zone: cfg.Zone, Region: cfg.Region})); n != memberlist.MetaMaxSize {
		t.Fatalf("test metadata is %d bytes, want %d", n, memberlist.MetaMaxSize)
	}
	m := startNode(t, cfg)
	if got := m.Local(); got.Zone != cfg.Zone || got.Region != cfg.Region {
		t.Errorf("zone %d bytes, region %d", len(got.Zone), len(got.Region))
	}
}

func TestSeedNameJoinsEveryAddress(t *testing.T) {
	// Three single-node clusters on one port of three loopback addresses,
	// as the pods behind a headless service would be.
	first := startNode(t, testConfig("pod0"))
	port := first.Local().Addr.Port()
	pods := []*Membership{first}
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		c := testConfig("pod" + string(rune('1'+i)))
		c.BindAddr, c.BindPort = ip, int(port)
		m, err := New(c)
		if err != nil {
			t.Skipf("cannot bind %s:%d: %v", ip, port, err)
		}
		t.Cleanup(func() { _ = m.Close() })
		pods = append(pods, m)
	}
	cfg := testConfig("joiner")
	cfg.Seeds = []string{"pods.test:" + strconv.Itoa(int(port))}
	cfg.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "pods.test" {
			return nil, errors.New("unknown host")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}, nil
	}
	joiner := startNode(t, cfg)
	// Only the joiner knows the pods: they merge only if it joined all.
	waitConverged(t, append(pods, joiner), 15*time.Second)
	if s := joiner.Stats(); s.JoinAttempts < 3 || s.JoinFailures != 0 {
		t.Errorf("stats %+v, want three successful joins", s)
	}
}

func TestEventsOverflowIsCounted(t *testing.T) {
	nodes := startCluster(t, "o", 4, func(i int, c *Config) {
		if i == 0 {
			c.EventBuffer = 1
		}
	})
	waitConverged(t, nodes, 15*time.Second)
	if len(nodes[0].Events()) != 1 {
		t.Errorf("buffer holds %d", len(nodes[0].Events()))
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return nodes[0].Stats().EventsDropped >= 2 },
		"dropped %d events, want at least 2", nodes[0].Stats().EventsDropped)
}

func TestSnapshotVersionsAndCloseCompletes(t *testing.T) {
	// The first snapshot is taken before the second node exists, so the
	// join is sure to come after it.
	seed := startNode(t, testConfig("v0"))
	first := seed.Snapshot()
	c := testConfig("v1")
	c.Seeds = []string{seed.Local().Addr.String()}
	nodes := []*Membership{seed, startNode(t, c)}
	waitConverged(t, nodes, 15*time.Second)
	later := nodes[0].Snapshot()
	if later.Version <= first.Version {
		t.Errorf("version %d after a join, was %d", later.Version, first.Version)
	}
	if len(first.Nodes) > len(later.Nodes) {
		t.Error("an old snapshot changed")
	}
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	// Close left the cluster gracefully.
	warptest.Eventually(t, 10*time.Second, func() bool { return sees(nodes[0], syncbus.MemberLeft, nodes[1].Name()) },
		"a closed node is not reported left:%s", describe(nodes[:1]))
	if last := nodes[1].Snapshot(); last.Local.State != syncbus.MemberLeft {
		t.Errorf("closed node's last snapshot shows it %v", last.Local.State)
	}
}
