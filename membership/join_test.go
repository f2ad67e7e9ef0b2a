package membership

import (
	"net/netip"
	"slices"
	"testing"

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
