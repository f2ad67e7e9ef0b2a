package redis

import (
	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// zonesQuorum is bridge.Quorum counting as package zones does, as the mesh
// counts. (Each bridge package holds this line: package bridge may not
// import zones.)
func zonesQuorum(local string, members []syncbus.Member, kind syncbus.QuorumKind, required, zoneQuorum int) (bridge.Counter, error) {
	c, err := zones.NewCounter(local, members, kind, required, zoneQuorum)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}
