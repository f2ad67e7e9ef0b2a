package sim_test

import (
	"testing"

	"github.com/warpmesh/warp/sim"
)

// checkLarge runs the large scenario with perZone nodes in each of its
// five zones and checks that the cluster converged, that every event
// reached every node, and that in relay mode each event crossed to each
// remote zone exactly once (first transmissions; a datagram may carry
// several events).
func checkLarge(t *testing.T, perZone int) *sim.Report {
	sc := sim.LargeOf(perZone)
	sc.Seed = testSeed(t, sc.Seed)
	rep := run(t, sc)
	t.Logf("%d nodes, scale %g: converged in %.0fms, wall %.1fs; per event: %.2f events datagrams within, %.2f across",
		rep.Nodes, rep.TimeScale, rep.ConvergeMs, rep.WallSeconds, rep.PerEvent.EventDatagramsWithin, rep.PerEvent.EventDatagramsAcross)
	if rep.Fanout != "relay" {
		t.Errorf("fanout %s, want relay at %d nodes", rep.Fanout, rep.Nodes)
	}
	if d := rep.Delivery; d.Missing != 0 || d.Expected != rep.Published*rep.Nodes {
		t.Errorf("delivery %+v: want all %d events on all %d nodes", d, rep.Published, rep.Nodes)
	}
	remote := uint64(len(rep.Zones) - 1)
	ev := rep.Network.Events.Across
	if ev.Events != uint64(rep.Published)*remote || ev.Datagrams > uint64(rep.Published)*remote {
		t.Errorf("%d events in %d datagrams crossed zones for %d events, want %d events in at most as many datagrams",
			ev.Events, ev.Datagrams, rep.Published, uint64(rep.Published)*remote)
	}
	if rep.FalseAcks != 0 {
		t.Errorf("%d false acknowledgements", rep.FalseAcks)
	}
	return rep
}
