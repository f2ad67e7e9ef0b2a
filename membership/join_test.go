package membership

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

func TestRejoinTargets(t *testing.T) {
	ap := netip.MustParseAddrPort
	snap := &Snapshot{
		Local: Node{Name: "self", Addr: ap("10.0.0.1:7946")},
		Nodes: []Node{
			{Name: "alive", Addr: ap("10.0.0.2:7946"), State: syncbus.MemberAlive},
			{Name: "back", Addr: ap("10.0.0.9:7946"), State: syncbus.MemberAlive}, // restarted elsewhere
			{Name: "self", Addr: ap("10.0.0.1:7946"), State: syncbus.MemberAlive},
			{Name: "sus", Addr: ap("10.0.0.3:7946"), State: syncbus.MemberSuspect},
		},
	}
	seeds := []netip.AddrPort{ap("10.0.0.1:7946"), ap("10.0.0.2:7946"), ap("10.0.0.5:7946"), ap("10.0.0.3:7946")}
	failed := []downAddr{
		{name: "gone", addr: ap("10.0.0.6:7946")},
		{name: "back", addr: ap("10.0.0.7:7946")}, // its name is alive again
		{name: "seedtoo", addr: ap("10.0.0.5:7946")},
		{name: "other", addr: ap("10.0.0.8:7946")},
	}
	got := rejoinTargets(seeds, failed, snap, 16)
	want := []netip.AddrPort{ap("10.0.0.5:7946"), ap("10.0.0.6:7946"), ap("10.0.0.8:7946")}
	if !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if got := rejoinTargets(seeds, failed, snap, 2); len(got) != 2 || got[0] != want[0] {
		t.Errorf("limited targets %v", got)
	}
}

// After its first join a node exchanges state with a seed settleRounds
// more times, at growing intervals: nodes that start together learn of
// each other from the seeds even where gossip missed one of them.
func TestJoinSettlesWithTheSeeds(t *testing.T) {
	seed := startNode(t, testConfig("settle-seed"))
	cfg := testConfig("settle-joiner")
	cfg.Seeds = []string{seed.Local().Addr.String()}
	cfg.RejoinInterval = -1 // only the first join and the settling
	joiner := startNode(t, cfg)
	waitConverged(t, []*Membership{seed, joiner}, 10*time.Second)
	// 2+4+8+16 probe intervals of 200ms: about 6s.
	warptest.Eventually(t, 30*time.Second, func() bool { return joiner.Stats().JoinAttempts == 1+settleRounds },
		"join attempts %d, want %d (the first join and the settling rounds)", func() string { return fmt.Sprint(joiner.Stats().JoinAttempts) }, 1+settleRounds)
	if s := joiner.Stats(); s.JoinFailures != 0 {
		t.Errorf("stats %+v: a settling exchange failed", s)
	}
	if got := seed.Stats().JoinAttempts; got != 0 {
		t.Errorf("the seed, which has no seeds, made %d join attempts", got)
	}
}
