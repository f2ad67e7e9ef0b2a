package mesh

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/membership"
)

// TestTimeScaleStretchesTheMesh: TimeScale reaches every interval of the
// node — the mesh's own and, through one validation, membership's and
// memberlist's — whether it is a default or set.
func TestTimeScaleStretchesTheMesh(t *testing.T) {
	plain := MeshOptions{Heartbeat: 300 * time.Millisecond, BatchInterval: 3 * time.Millisecond}
	scaled := plain
	scaled.TimeScale = 10
	if err := plain.validate(); err != nil {
		t.Fatal(err)
	}
	if err := scaled.validate(); err != nil {
		t.Fatal(err)
	}
	mp, ms := plain.membershipConfig(nil), scaled.membershipConfig(nil)
	if err := mp.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := ms.Validate(); err != nil {
		t.Fatal(err)
	}
	pairs := map[string][2]time.Duration{
		"BatchInterval":       {plain.BatchInterval, scaled.BatchInterval},
		"AckTimeout":          {plain.AckTimeout, scaled.AckTimeout},
		"BackpressureTimeout": {plain.BackpressureTimeout, scaled.BackpressureTimeout},
		"StallTimeout":        {plain.StallTimeout, scaled.StallTimeout},
		"probe interval":      {mp.ProbeInterval, ms.ProbeInterval},
		"probe timeout":       {mp.ProbeTimeout, ms.ProbeTimeout},
		"gossip interval":     {mp.GossipInterval, ms.GossipInterval},
		"push/pull interval":  {mp.PushPullInterval, ms.PushPullInterval},
		"TCP timeout":         {mp.TCPTimeout, ms.TCPTimeout},
		"rejoin interval":     {mp.RejoinInterval, ms.RejoinInterval},
		"leave timeout":       {mp.LeaveTimeout, ms.LeaveTimeout},
	}
	for name, p := range pairs {
		if p[0] <= 0 || p[1] != 10*p[0] {
			t.Errorf("%s: %v at scale 10, %v at scale 1", name, p[1], p[0])
		}
	}
	if plain.BatchInterval != 3*time.Millisecond || mp.ProbeInterval != 300*time.Millisecond {
		t.Errorf("the settings given are the scale-1 values: %v, %v", plain.BatchInterval, mp.ProbeInterval)
	}
}

// TestOneValidation: the mesh and membership accept and refuse the same
// shared settings, with membership's own rules.
func TestOneValidation(t *testing.T) {
	for _, peer := range []string{"127.0.0.1", "10.0.0.1:7946", "seeds.example:7000", "dns+svc.ns.svc:7946", "dnssrv+_warp._udp.example"} {
		o := MeshOptions{Peers: []string{peer}}
		if err := o.validate(); err != nil {
			t.Errorf("peer %q refused by the mesh: %v", peer, err)
		}
		c := membership.Config{Seeds: []string{peer}}
		if err := c.Validate(); err != nil {
			t.Errorf("peer %q refused by membership: %v", peer, err)
		}
	}
	for _, o := range []MeshOptions{
		{Peers: []string{"host:0"}},
		{Peers: []string{"[::1"}},
		{BindAddr: "localhost"},
		{Port: 70000},
		{Zone: strings.Repeat("z", 300)},
		{TimeScale: -1},
		{TimeScale: math.NaN()},
		{FlowWindow: 10},
	} {
		if err := o.validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	err := (&MeshOptions{Peers: []string{"host:0"}}).validate()
	if !errors.Is(err, membership.ErrConfig) {
		t.Errorf("a bad peer: %v, want membership's ErrConfig inside", err)
	}
	for _, hb := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		for _, profile := range []string{"lan", "local", "wan"} {
			o := MeshOptions{Heartbeat: hb, Profile: profile}
			if err := o.validate(); err != nil {
				t.Errorf("heartbeat %v on %s: %v", hb, profile, err)
			}
		}
	}
	if DefaultPort != membership.DefaultPort {
		t.Error("two default ports")
	}
}

func TestDefaultMeshOptions(t *testing.T) {
	a, b := DefaultMeshOptions(), DefaultMeshOptions()
	if a.NodeName == "" || a.NodeName == b.NodeName {
		t.Errorf("default names %q and %q", a.NodeName, b.NodeName)
	}
	if a.Port != DefaultPort || a.BatchInterval != DefaultBatchInterval || a.PrefixBuffer != DefaultPrefixBuffer ||
		a.FlowWindow != DefaultFlowWindow || a.StallTimeout != DefaultStallTimeout || a.Clock == nil || a.Recorder == nil {
		t.Errorf("defaults not filled in: %+v", a)
	}
	if err := a.validate(); err != nil {
		t.Errorf("the defaults do not validate again: %v", err)
	}
}
