package zones_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

func members(failed ...string) []syncbus.Member {
	ms := []syncbus.Member{
		{Name: "p", Zone: "a"},
		{Name: "q", Zone: "a"},
		{Name: "r", Zone: "b"},
		{Name: "s", Zone: "c"},
	}
	for i := range ms {
		if slices.Contains(failed, ms[i].Name) {
			ms[i].State = syncbus.MemberFailed
		}
	}
	return ms
}

// TestCounter: a Counter fails fast on a request the members cannot
// satisfy, counts acknowledgements to a decision with its report, and
// recounts when the member list changes.
func TestCounter(t *testing.T) {
	if _, err := zones.NewCounter("p", members(), syncbus.QuorumZones, 4, 0); !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Errorf("4 zones of 3: %v, want a fail fast", err)
	}
	var qe *syncbus.QuorumError
	if _, err := zones.NewCounter("p", members("s"), syncbus.QuorumReplicas, 3, 0); !errors.As(err, &qe) || !qe.FailFast || qe.Available != 2 {
		t.Errorf("3 replicas with s failed: %v, want a fail fast with 2 available", err)
	}

	c, err := zones.NewCounter("p", members(), syncbus.QuorumZones, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ack("p") {
		t.Error("the publisher's own ack counted")
	}
	if !c.Ack("r") || c.Decided() {
		t.Fatal("r's ack: not counted, or decided with 2 of 3 zones")
	}
	if !c.Ack("s") || !c.Decided() {
		t.Fatal("s's ack: not counted, or undecided with 3 of 3 zones")
	}
	var rep syncbus.AckReport
	if err := c.Outcome(nil, &rep); err != nil {
		t.Fatalf("Outcome: %v", err)
	}
	if !slices.Equal(rep.Zones, []string{"a", "b", "c"}) || !slices.Equal(rep.Nodes, []string{"r", "s"}) {
		t.Errorf("report %+v, want zones a b c by r and s", rep)
	}

	// The members change under a pending count: s fails, and three zones
	// can no longer be had.
	c, err = zones.NewCounter("p", members(), syncbus.QuorumZones, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Ack("r")
	c.Update(members("s"))
	if !c.Decided() {
		t.Fatal("undecided after the only node of zone c failed")
	}
	if err := c.Outcome(context.DeadlineExceeded, nil); !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Outcome: %v, want a quorum error with its cause", err)
	}
	// A list without the local node is ignored: the count goes on.
	c.Update([]syncbus.Member{{Name: "x", Zone: "z"}})
	if !c.Decided() {
		t.Error("an unusable member list changed the count")
	}
}
