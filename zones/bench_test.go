package zones_test

import (
	"fmt"
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
	"github.com/warpmesh/warp/zones/zonestest"
)

// benchSizes are the cluster sizes of the benchmarks, all in three zones.
var benchSizes = []int{5, 50, 500}

func benchTopology(b *testing.B, n int) *zones.Topology {
	b.Helper()
	ms := zonestest.Uniform(n, 3)
	topo, err := zones.New(ms[0].Name, ms)
	if err != nil {
		b.Fatal(err)
	}
	return topo
}

func BenchmarkNew(b *testing.B) {
	for _, n := range benchSizes {
		ms := zonestest.Uniform(n, 3)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := zones.New(ms[0].Name, ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPlan(b *testing.B) {
	for _, mode := range []zones.Mode{zones.ModeDirect, zones.ModeRelay} {
		for _, n := range benchSizes {
			topo := benchTopology(b, n)
			b.Run(fmt.Sprintf("%v/nodes=%d", mode, n), func(b *testing.B) {
				b.ReportAllocs()
				var spread uint64
				for b.Loop() {
					spread++
					if len(topo.Plan(mode, spread, nil)) == 0 {
						b.Fatal("empty plan")
					}
				}
			})
			b.Run(fmt.Sprintf("%v/append/nodes=%d", mode, n), func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]zones.Target, 0, n)
				var spread uint64
				for b.Loop() {
					spread++
					buf = topo.AppendPlan(buf[:0], mode, spread, nil)
				}
			})
		}
	}
}

// BenchmarkPlanAvoiding plans retransmissions where a third of the nodes are
// to be avoided as relays, which exercises the probing of pickRelay.
func BenchmarkPlanAvoiding(b *testing.B) {
	for _, n := range benchSizes {
		topo := benchTopology(b, n)
		avoided := make(map[string]bool)
		for i, m := range topo.Members() {
			if i%3 == 1 {
				avoided[m.Name] = true
			}
		}
		avoid := func(name string) bool { return avoided[name] }
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]zones.Target, 0, n)
			var spread uint64
			for b.Loop() {
				spread++
				buf = topo.AppendPlan(buf[:0], zones.ModeRelay, spread, avoid)
			}
		})
	}
}

// BenchmarkTracker measures the acknowledgement side of one awaited event:
// the fail-fast check, a new tracker, and acks until it is satisfied.
func BenchmarkTracker(b *testing.B) {
	for _, n := range benchSizes {
		topo := benchTopology(b, n)
		var others []string
		for _, m := range topo.Members() {
			if m.Name != topo.Local() {
				others = append(others, m.Name)
			}
		}
		reqs := []struct {
			name string
			req  zones.Requirement
		}{
			{"replicas=all", zones.Replicas(n - 1)},
			{"zones=3", zones.Zones(3)},
			{"zones=3,quorum=2", zones.Zones(3).WithZoneQuorum(2)},
		}
		for _, r := range reqs {
			b.Run(fmt.Sprintf("%s/nodes=%d", r.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if ok, _ := zones.Feasible(topo, r.req); !ok {
						b.Fatal("infeasible")
					}
					tr := zones.NewTracker(topo, r.req)
					for _, o := range others {
						tr.Ack(o)
						if tr.Result() == zones.Satisfied {
							break
						}
					}
					if tr.Result() != zones.Satisfied {
						b.Fatal("not satisfied")
					}
				}
			})
		}
	}
}

func BenchmarkTrackerAck(b *testing.B) {
	for _, n := range benchSizes {
		topo := benchTopology(b, n)
		members := topo.Members()
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			tr := zones.NewTracker(topo, zones.Replicas(n))
			i := 0
			for b.Loop() {
				// Most acks after the first round are duplicates, which is
				// the common case of a retransmitted event's late acks.
				tr.Ack(members[i%len(members)].Name)
				i++
			}
		})
	}
}

func BenchmarkSetTopology(b *testing.B) {
	for _, n := range benchSizes {
		topo := benchTopology(b, n)
		ms := zonestest.Uniform(n, 3)
		ms[len(ms)-1].State = syncbus.MemberFailed
		next, err := zones.New(ms[0].Name, ms)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			tr := zones.NewTracker(topo, zones.Zones(3))
			for _, m := range ms[1 : n/2] {
				tr.Ack(m.Name)
			}
			flip := []*zones.Topology{next, topo}
			i := 0
			for b.Loop() {
				if err := tr.SetTopology(flip[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkZonePeers(b *testing.B) {
	for _, n := range benchSizes {
		topo := benchTopology(b, n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]string, 0, n)
			for b.Loop() {
				buf = topo.AppendZonePeers(buf[:0], topo.LocalZone(), topo.Local(), "origin")
			}
		})
	}
}
