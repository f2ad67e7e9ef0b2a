package membership

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestTimeScaleStretchesEveryTiming: with TimeScale 10, every interval and
// timeout memberlist and this package use is ten times the scale-1 value,
// whether it came from the profile or from an override.
func TestTimeScaleStretchesEveryTiming(t *testing.T) {
	for _, profile := range []string{ProfileLAN, ProfileLocal, ProfileWAN} {
		plain := Config{Profile: profile, GossipInterval: 300 * time.Millisecond, KeepDown: time.Minute}
		scaled := plain
		scaled.TimeScale = 10
		if err := plain.validate(); err != nil {
			t.Fatal(err)
		}
		if err := scaled.validate(); err != nil {
			t.Fatal(err)
		}
		pairs := map[string][2]time.Duration{
			"ProbeInterval":       {plain.ProbeInterval, scaled.ProbeInterval},
			"ProbeTimeout":        {plain.ProbeTimeout, scaled.ProbeTimeout},
			"GossipInterval":      {plain.GossipInterval, scaled.GossipInterval},
			"GossipToTheDeadTime": {plain.GossipToTheDeadTime, scaled.GossipToTheDeadTime},
			"PushPullInterval":    {plain.PushPullInterval, scaled.PushPullInterval},
			"TCPTimeout":          {plain.TCPTimeout, scaled.TCPTimeout},
			"DeadNodeReclaimTime": {plain.DeadNodeReclaimTime, scaled.DeadNodeReclaimTime},
			"RejoinInterval":      {plain.RejoinInterval, scaled.RejoinInterval},
			"RejoinTimeout":       {plain.RejoinTimeout, scaled.RejoinTimeout},
			"KeepDown":            {plain.KeepDown, scaled.KeepDown},
			"LeaveTimeout":        {plain.LeaveTimeout, scaled.LeaveTimeout},
		}
		m := &Membership{cfg: scaled}
		mc := m.memberlistConfig(DefaultPort, nil, &delegate{})
		mp := (&Membership{cfg: plain}).memberlistConfig(DefaultPort, nil, &delegate{})
		pairs["memberlist ProbeInterval"] = [2]time.Duration{mp.ProbeInterval, mc.ProbeInterval}
		pairs["memberlist GossipInterval"] = [2]time.Duration{mp.GossipInterval, mc.GossipInterval}
		pairs["memberlist PushPullInterval"] = [2]time.Duration{mp.PushPullInterval, mc.PushPullInterval}
		pairs["memberlist TCPTimeout"] = [2]time.Duration{mp.TCPTimeout, mc.TCPTimeout}
		pairs["memberlist QueueCheckInterval"] = [2]time.Duration{mp.QueueCheckInterval, mc.QueueCheckInterval}
		for name, p := range pairs {
			if p[0] <= 0 || p[1] != 10*p[0] {
				t.Errorf("%s: %s is %v at scale 10, %v at scale 1", profile, name, p[1], p[0])
			}
		}
		if (&Membership{cfg: scaled}).pollInterval() != 10*(&Membership{cfg: plain}).pollInterval() {
			t.Errorf("%s: the poll interval does not follow the scale", profile)
		}
	}
}

// TestTimeScaleAppliesOnce: validating a config twice (DefaultConfig, then
// New) stretches it once.
func TestTimeScaleAppliesOnce(t *testing.T) {
	c := DefaultConfig()
	probe := c.ProbeInterval
	c.TimeScale = 10
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.ProbeInterval != 10*probe {
		t.Fatalf("probe interval %v after two validations at scale 10, want %v", c.ProbeInterval, 10*probe)
	}
}

func TestTimeScaleRejectsNonsense(t *testing.T) {
	for _, s := range []float64{-1, math.NaN(), math.Inf(1)} {
		c := Config{TimeScale: s}
		if err := c.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("TimeScale %v: %v, want ErrConfig", s, err)
		}
	}
}

// TestProbeIntervalAloneWorksOnEveryProfile: a probe interval (the mesh's
// heartbeat) below the profile's probe timeout brings the timeout down
// with it, on every profile.
func TestProbeIntervalAloneWorksOnEveryProfile(t *testing.T) {
	for _, profile := range []string{ProfileLAN, ProfileLocal, ProfileWAN} {
		for _, hb := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Second, 5 * time.Second} {
			c := Config{Profile: profile, ProbeInterval: hb}
			if err := c.validate(); err != nil {
				t.Errorf("%s, probe interval %v: %v", profile, hb, err)
				continue
			}
			if c.ProbeTimeout >= c.ProbeInterval || c.ProbeTimeout <= 0 {
				t.Errorf("%s, probe interval %v: timeout %v", profile, hb, c.ProbeTimeout)
			}
		}
	}
}
