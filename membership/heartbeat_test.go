package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// hbHeartbeats are the probe intervals (the mesh's Heartbeat) the detection
// tests cover: the short ones the older go-warp tests use, the lan and
// local profiles' default and the wan profile's.
var hbHeartbeats = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Second, 5 * time.Second}

var hbProfiles = []string{ProfileLocal, ProfileLAN, ProfileWAN}

// heartbeatCluster starts n nodes on loopback under profile with only the
// probe interval set, as MeshOptions{Profile, Heartbeat} sets it, and
// waits until they see each other.
func heartbeatCluster(t *testing.T, profile string, hb time.Duration, n int) []*Membership {
	t.Helper()
	nodes := make([]*Membership, n)
	for i := range n {
		c := Config{
			Name:          fmt.Sprintf("hb-%s-%v-%d", profile, hb, i),
			BindAddr:      "127.0.0.1",
			BindPort:      -1,
			Profile:       profile,
			ProbeInterval: hb,
			LeaveTimeout:  time.Second,
			Logger:        testLogger(),
		}
		if i > 0 {
			c.Seeds = []string{nodes[0].Local().Addr.String()}
		}
		nodes[i] = startNode(t, c)
	}
	waitConverged(t, nodes, time.Minute)
	return nodes
}

// killAndDetect crashes the last node (it stops answering, without
// leaving) and returns how long until every survivor reports it failed,
// failing the test if that takes longer than bound.
func killAndDetect(t *testing.T, nodes []*Membership, bound time.Duration) time.Duration {
	t.Helper()
	victim, survivors := nodes[len(nodes)-1], nodes[:len(nodes)-1]
	killed := time.Now()
	victim.shutdown(false)
	warptest.Eventually(t, bound, func() bool {
		for _, s := range survivors {
			if !sees(s, syncbus.MemberFailed, victim.Name()) {
				return false
			}
		}
		return true
	}, "the killed node %s was not reported failed by every survivor within the documented bound:%s",
		victim.Name(), func() string { return describe(survivors) })
	return time.Since(killed)
}

// detectionBound is the time the documentation of MeshOptions.Heartbeat
// states for a cluster of a few nodes: a killed node is reported failed
// about SuspicionMult+2 heartbeats after it died, and within
// SuspicionMult+4 heartbeats plus one gossip interval. (The detector
// probes each peer within two heartbeats, the probe takes one, suspicion
// lasts SuspicionMult, and the verdict is gossiped.)
func detectionBound(c Config) time.Duration {
	return time.Duration(c.SuspicionMult+4)*c.ProbeInterval + c.GossipInterval
}

// checkDetection builds a cluster of three under profile with heartbeat
// hb, kills a node and checks that it is reported failed within the
// documented bound.
func checkDetection(t *testing.T, profile string, hb time.Duration) {
	nodes := heartbeatCluster(t, profile, hb, 3)
	c := nodes[0].cfg
	if c.ProbeInterval != hb || c.ProbeTimeout >= hb {
		t.Fatalf("probe interval %v, timeout %v; want %v and a shorter timeout", c.ProbeInterval, c.ProbeTimeout, hb)
	}
	bound := detectionBound(c)
	d := killAndDetect(t, nodes, bound)
	t.Logf("profile %s, heartbeat %v (probe timeout %v, suspicion ×%d, gossip %v): reported failed after %v = %.1f heartbeats (bound %v)",
		profile, hb, c.ProbeTimeout, c.SuspicionMult, c.GossipInterval, d.Round(time.Millisecond), float64(d)/float64(hb), bound)
}

// TestEveryHeartbeatStartsOnEveryProfile: a node starts with every
// heartbeat the detection tests cover, on every profile, with nothing but
// the probe interval set, and runs with that interval and a shorter probe
// timeout.
func TestEveryHeartbeatStartsOnEveryProfile(t *testing.T) {
	for _, profile := range hbProfiles {
		for _, hb := range hbHeartbeats {
			m, err := New(Config{Name: "hb", BindAddr: "127.0.0.1", BindPort: -1, Profile: profile, ProbeInterval: hb, Logger: testLogger()})
			if err != nil {
				t.Errorf("%s, heartbeat %v: %v", profile, hb, err)
				continue
			}
			mc := m.memberlistConfig(DefaultPort, nil, &delegate{})
			if mc.ProbeInterval != hb || mc.ProbeTimeout >= hb || mc.ProbeTimeout <= 0 {
				t.Errorf("%s, heartbeat %v: memberlist runs with probe interval %v and timeout %v", profile, hb, mc.ProbeInterval, mc.ProbeTimeout)
			}
			if err := m.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestShortHeartbeatDetection: with the short heartbeats (50, 100 and
// 200ms) on every profile, a killed node is reported failed within the
// documented bound. TestLongHeartbeatDetection covers 1s and 5s.
func TestShortHeartbeatDetection(t *testing.T) {
	for _, profile := range hbProfiles {
		for _, hb := range hbHeartbeats {
			if hb >= time.Second {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v", profile, hb), func(t *testing.T) { checkDetection(t, profile, hb) })
		}
	}
}
