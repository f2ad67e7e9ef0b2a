//go:build !race

package membership

import (
	"fmt"
	"testing"
	"time"
)

// TestLongHeartbeatDetection is the slow half of the detection table: a
// heartbeat of 1s on every profile (5 to 10s each), and of 5s on the lan
// profile only (about 30s; the wan profile's default is 5s already and
// TestDetectionTimeByProfile measures it). Too slow for the race detector
// and for -short.
func TestLongHeartbeatDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 1s and 5s heartbeats take up to a minute; TestShortHeartbeatDetection covers the short ones")
	}
	cases := []struct {
		profile string
		hb      time.Duration
	}{{ProfileLocal, time.Second}, {ProfileLAN, time.Second}, {ProfileWAN, time.Second}, {ProfileLAN, 5 * time.Second}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v", c.profile, c.hb), func(t *testing.T) {
			t.Parallel() // a few idle clusters share the cores without trouble
			checkDetection(t, c.profile, c.hb)
		})
	}
}
