package zones_test

import (
	"testing"

	"github.com/warpmesh/warp/zones"
	"github.com/warpmesh/warp/zones/zonestest"
)

// topology builds the topology of a zonestest spec as local sees it,
// failing tb on a bad spec or a local node the spec does not list.
func topology(tb testing.TB, local, spec string) *zones.Topology {
	tb.Helper()
	t, err := zones.New(local, zonestest.Members(tb, spec))
	if err != nil {
		tb.Fatalf("zones.New(%q, %q): %v", local, spec, err)
	}
	return t
}
