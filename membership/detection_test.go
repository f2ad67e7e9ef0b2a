//go:build !race

package membership

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestDetectionTimeByProfile measures how long the other nodes of a
// five-node cluster take to report a killed node failed, under each
// profile's default timings. It takes minutes (the WAN profile suspects a
// node for half a minute and more), so it runs only when asked:
//
//	MEMBERSHIP_MEASURE=1 go test -run DetectionTime -v ./membership/
func TestDetectionTimeByProfile(t *testing.T) {
	if os.Getenv("MEMBERSHIP_MEASURE") == "" {
		t.Skip("set MEMBERSHIP_MEASURE=1 to measure failure detection under each profile (takes minutes)")
	}
	const size, rounds = 5, 3
	for _, profile := range []string{ProfileLocal, ProfileLAN, ProfileWAN} {
		t.Run(profile, func(t *testing.T) {
			var all []time.Duration
			for r := range rounds {
				all = append(all, measureDetection(t, profile, size, r)...)
			}
			slices.Sort(all)
			t.Logf("profile %s, %d nodes, %d kills: reported failed after min %v, median %v, max %v",
				profile, size, rounds, all[0].Round(10*time.Millisecond),
				all[len(all)/2].Round(10*time.Millisecond), all[len(all)-1].Round(10*time.Millisecond))
		})
	}
}

// measureDetection kills one node of a fresh cluster and returns, for each
// survivor, when its snapshot first showed the node failed.
func measureDetection(t *testing.T, profile string, size, round int) []time.Duration {
	nodes := make([]*Membership, size)
	for i := range size {
		c := Config{
			Name:     fmt.Sprintf("%s-%d-%d", profile, round, i),
			BindAddr: "127.0.0.1",
			BindPort: -1,
			Profile:  profile,
			Logger:   testLogger(),
		}
		if i > 0 {
			c.Seeds = []string{nodes[0].Local().Addr.String()}
		}
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		nodes[i] = m
	}
	waitConverged(t, nodes, time.Minute)
	victim, survivors := nodes[size-1], nodes[:size-1]
	killed := time.Now()
	victim.shutdown(false)
	found := make([]time.Duration, len(survivors))
	warptest.Eventually(t, 5*time.Minute, func() bool {
		done := true
		for i, n := range survivors {
			if found[i] == 0 && sees(n, syncbus.MemberFailed, victim.Name()) {
				found[i] = time.Since(killed)
			}
			done = done && found[i] != 0
		}
		return done
	}, "the killed node was not reported failed")
	return found
}
