package protocol

import (
	"fmt"
	"testing"
	"time"
)

// TestTimeScaleStretchesEveryTiming: every interval of the protocol is
// multiplied by the scale, the defaults and the overrides alike.
func TestTimeScaleStretchesEveryTiming(t *testing.T) {
	over := Timings{NakDelay: 7 * time.Millisecond}
	one, ten := over.Scaled(0), over.Scaled(10)
	pairs := map[string][2]time.Duration{
		"RetransmitInitial": {one.RetransmitInitial, ten.RetransmitInitial},
		"RetransmitMin":     {one.RetransmitMin, ten.RetransmitMin},
		"RetransmitMax":     {one.RetransmitMax, ten.RetransmitMax},
		"NakDelay":          {one.NakDelay, ten.NakDelay},
		"NakBackoffMax":     {one.NakBackoffMax, ten.NakBackoffMax},
		"RelayHold":         {one.RelayHold, ten.RelayHold},
		"RelayHoldMin":      {one.RelayHoldMin, ten.RelayHoldMin},
		"RelayHoldMax":      {one.RelayHoldMax, ten.RelayHoldMax},
		"CreditPoll":        {one.CreditPoll, ten.CreditPoll},
		"CreditKeepalive":   {one.CreditKeepalive, ten.CreditKeepalive},
		"StallTimeout":      {one.StallTimeout, ten.StallTimeout},
		"Activity":          {one.Activity, ten.Activity},
		"JoinSkew":          {one.JoinSkew, ten.JoinSkew},
	}
	for i := range one.Digests {
		pairs[fmt.Sprint("Digests", i)] = [2]time.Duration{one.Digests[i], ten.Digests[i]}
	}
	for name, p := range pairs {
		if p[0] <= 0 || p[1] != 10*p[0] {
			t.Errorf("%s: %v at scale 10, %v at scale 1", name, p[1], p[0])
		}
	}
	if one.NakDelay != 7*time.Millisecond || one.MaxNaks != DefaultTimings().MaxNaks || ten.MaxNaks != one.MaxNaks {
		t.Errorf("overrides and counts: %+v", one)
	}
	if err := CheckTimeScale(-1); err == nil {
		t.Error("a negative scale is accepted")
	}
}
