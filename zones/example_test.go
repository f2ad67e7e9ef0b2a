package zones_test

import (
	"errors"
	"fmt"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// cluster is five nodes in three zones, with n2 suspect and n6 failed.
func cluster() []syncbus.Member {
	return []syncbus.Member{
		{Name: "n1", Zone: "a", Addr: "10.0.1.1:7946"},
		{Name: "n2", Zone: "a", Addr: "10.0.1.2:7946", State: syncbus.MemberSuspect},
		{Name: "n3", Zone: "b", Addr: "10.0.2.3:7946"},
		{Name: "n4", Zone: "b", Addr: "10.0.2.4:7946"},
		{Name: "n5", Zone: "c", Addr: "10.0.3.5:7946"},
		{Name: "n6", Zone: "c", Addr: "10.0.3.6:7946", State: syncbus.MemberFailed},
	}
}

// A publisher in zone a plans an event in relay mode: its zone peer
// directly, one relay in each other zone. The failed n6 is left out.
func ExampleTopology_Plan() {
	topo, err := zones.New("n1", cluster())
	if err != nil {
		panic(err)
	}
	var id syncbus.EventID // the event's ID, from a syncbus.IDGenerator
	for _, tg := range topo.Plan(zones.ModeRelay, zones.Spread(id), nil) {
		fmt.Printf("%s in zone %s at %s relay=%v\n", tg.Node, tg.Zone, tg.Addr, tg.Relay)
	}
	// Output:
	// n2 in zone a at 10.0.1.2:7946 relay=false
	// n4 in zone b at 10.0.2.4:7946 relay=true
	// n5 in zone c at 10.0.3.5:7946 relay=true
}

// A relay that went silent is avoided when the event is retransmitted:
// zone b gets its other node.
func ExampleTopology_PickRelay() {
	topo, err := zones.New("n1", cluster())
	if err != nil {
		panic(err)
	}
	spread := zones.Spread(syncbus.EventID{})
	first, _ := topo.PickRelay("b", spread, nil)
	silent := map[string]bool{first.Node: true}
	again, _ := topo.PickRelay("b", spread, func(name string) bool { return silent[name] })
	fmt.Println(first.Node, "went silent; retransmit through", again.Node)
	// Output:
	// n4 went silent; retransmit through n3
}

// The relay n4, on its own topology, fans the event from n1 out to the rest
// of its zone.
func ExampleTopology_ZonePeers() {
	relay, err := zones.New("n4", cluster())
	if err != nil {
		panic(err)
	}
	fmt.Println(relay.ZonePeers(relay.LocalZone(), relay.Local(), "n1"))
	// Output:
	// [n3]
}

// PublishAndAwaitTopology(ctx, key, 3, syncbus.WithZoneQuorum(2)): zone a
// needs n1 (the publisher) and n2, zone b two of its nodes, zone c its one
// alive node.
func ExampleTracker() {
	topo, err := zones.New("n1", cluster())
	if err != nil {
		panic(err)
	}
	tr := zones.NewTracker(topo, zones.Zones(3).WithZoneQuorum(2))
	for _, from := range []string{"n3", "n5", "n6", "n3", "n4", "n2"} {
		counted := tr.Ack(from)
		fmt.Printf("ack %s counted=%v zones=%v %v\n", from, counted, tr.AckedZones(), tr.Result())
	}
	fmt.Println("report:", tr.Report())
	// Output:
	// ack n3 counted=true zones=[] Pending
	// ack n5 counted=true zones=[c] Pending
	// ack n6 counted=false zones=[c] Pending
	// ack n3 counted=false zones=[c] Pending
	// ack n4 counted=true zones=[b c] Pending
	// ack n2 counted=true zones=[a b c] Satisfied
	// report: {[n2 n3 n4 n5] [a b c]}
}

// A node dies before acknowledging: the tracker learns of it and the call
// can stop waiting.
func ExampleTracker_SetTopology() {
	members := cluster()
	topo, err := zones.New("n1", members)
	if err != nil {
		panic(err)
	}
	tr := zones.NewTracker(topo, zones.Replicas(4))
	tr.Ack("n3")
	fmt.Println(tr.Result(), "waiting for", tr.Unacked())

	members[4].State = syncbus.MemberFailed // n5 died
	next, err := zones.New("n1", members)
	if err != nil {
		panic(err)
	}
	if err := tr.SetTopology(next); err != nil {
		panic(err)
	}
	fmt.Println(tr.Result(), "available", tr.Available())
	err = tr.Err(nil)
	fmt.Println(errors.Is(err, syncbus.ErrQuorumNotSatisfied), err)
	// Output:
	// Pending waiting for [n2 n4 n5]
	// Impossible available 3
	// true syncbus: quorum not satisfied: 1 of 4 replicas acknowledged; nodes [n3]; zones [b]
}

// A publisher fails fast, without sending, when the alive nodes cannot
// satisfy the request.
func ExampleCheckFeasible() {
	topo, err := zones.New("n1", cluster())
	if err != nil {
		panic(err)
	}
	fmt.Println(zones.CheckFeasible(topo, zones.Zones(3)))
	err = zones.CheckFeasible(topo, zones.Replicas(5))
	var qe *syncbus.QuorumError
	fmt.Println(errors.As(err, &qe), qe.FailFast, qe.Available)
	fmt.Println(err)
	// Output:
	// <nil>
	// true true 4
	// syncbus: quorum not satisfied: 0 of 5 replicas acknowledged; only 4 available, failed fast
}
