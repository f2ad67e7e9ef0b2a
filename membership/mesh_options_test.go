package membership_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
)

// These tests check the mesh's options that membership carries out —
// Heartbeat, Group and Interface — through mesh.NewMeshBus, the way a
// user meets them.

// TestMeshStartsWithEveryHeartbeat: NewMeshBus accepts every heartbeat
// from 50ms to 5s on every profile (it used to refuse every one shorter
// than the profile's probe timeout), and the node runs.
func TestMeshStartsWithEveryHeartbeat(t *testing.T) {
	for _, profile := range []string{membership.ProfileLocal, membership.ProfileLAN, membership.ProfileWAN} {
		for _, hb := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Second, 5 * time.Second} {
			bus, err := mesh.NewMeshBus(mesh.MeshOptions{NodeName: "hb", BindAddr: "127.0.0.1", Port: -1, Profile: profile, Heartbeat: hb})
			if err != nil {
				t.Errorf("profile %s, heartbeat %v: %v", profile, hb, err)
				continue
			}
			if n := len(bus.Members()); n != 1 {
				t.Errorf("profile %s, heartbeat %v: %d members, want the node itself", profile, hb, n)
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestMeshRefusesABadInterface: a Group with an interface that does not
// exist, or an Interface without a Group, is a constructor error that
// names the interface. (No multicast is sent: the tests that send run in
// network namespaces.)
func TestMeshRefusesABadInterface(t *testing.T) {
	for _, o := range []mesh.MeshOptions{
		{Group: "239.1.2.3", Interface: "warp-nope0"},
		{Interface: "warp-nope0"},
	} {
		o.BindAddr, o.Port = "127.0.0.1", -1
		bus, err := mesh.NewMeshBus(o)
		if err == nil {
			_ = bus.Close()
			t.Fatalf("Group %q, Interface %q: no error", o.Group, o.Interface)
		}
		if !errors.Is(err, membership.ErrConfig) || !strings.Contains(err.Error(), `"warp-nope0"`) {
			t.Errorf("Group %q, Interface %q: %v, want an error naming the interface", o.Group, o.Interface, err)
		}
	}
	if _, err := mesh.NewMeshBus(mesh.MeshOptions{Group: "10.0.0.1", BindAddr: "127.0.0.1", Port: -1}); !errors.Is(err, membership.ErrConfig) {
		t.Errorf("a unicast Group: %v, want an error", err)
	}
}
