package redis

import (
	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// The acknowledgement counting of package zones, as bridge.Quorum wants
// it. (Each bridge package holds this adapter: package bridge may not
// import zones.)

func zonesQuorum(local string, members []syncbus.Member, kind syncbus.QuorumKind, required, zoneQuorum int) (bridge.Counter, error) {
	topo, err := zones.New(local, members)
	if err != nil {
		return nil, err
	}
	req := zones.Replicas(required)
	if kind == syncbus.QuorumZones {
		req = zones.Zones(required).WithZoneQuorum(zoneQuorum)
	}
	if err := zones.CheckFeasible(topo, req); err != nil {
		return nil, err
	}
	return &zonesCounter{local: local, tr: zones.NewTracker(topo, req)}, nil
}

type zonesCounter struct {
	local string
	tr    *zones.Tracker
}

func (z *zonesCounter) Ack(node string) bool { return z.tr.Ack(node) }

func (z *zonesCounter) Decided() bool { return z.tr.Result() != zones.Pending }

func (z *zonesCounter) Update(members []syncbus.Member) {
	if topo, err := zones.New(z.local, members); err == nil {
		_ = z.tr.SetTopology(topo) // same local node: cannot fail
	}
}

func (z *zonesCounter) Outcome(cause error, report *syncbus.AckReport) error {
	if z.tr.Result() == zones.Satisfied {
		if report != nil {
			*report = z.tr.Report()
		}
		return nil
	}
	return z.tr.Err(cause)
}
