package membership

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Profile != ProfileLAN || c.BindAddr != "0.0.0.0" || c.BindPort != DefaultPort {
		t.Errorf("profile/bind defaults: %q %q %d", c.Profile, c.BindAddr, c.BindPort)
	}
	if c.ProbeInterval != time.Second || c.ProbeTimeout != 500*time.Millisecond || c.SuspicionMult != 4 {
		t.Errorf("LAN timings: %v %v %d", c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult)
	}
	if c.RejoinInterval != c.PushPullInterval || c.DeadNodeReclaimTime != 5*c.ProbeInterval {
		t.Errorf("derived defaults: rejoin %v, reclaim %v", c.RejoinInterval, c.DeadNodeReclaimTime)
	}
	if c.EventBuffer != DefaultEventBuffer || c.KeepDown != DefaultKeepDown || c.Logger == nil {
		t.Errorf("other defaults: %+v", c)
	}
	if c.Name == "" || c.Name == DefaultConfig().Name {
		t.Errorf("default names must be unique: %q", c.Name)
	}
}

func TestConfigProfiles(t *testing.T) {
	for profile, probe := range map[string]time.Duration{ProfileLocal: time.Second, ProfileWAN: 5 * time.Second} {
		c := Config{Profile: profile}
		if err := c.validate(); err != nil || c.ProbeInterval != probe {
			t.Errorf("%s: probe %v, %v", profile, c.ProbeInterval, err)
		}
	}
	c := Config{Profile: ProfileWAN, ProbeInterval: 7 * time.Second}
	if err := c.validate(); err != nil || c.ProbeInterval != 7*time.Second || c.ProbeTimeout != 3*time.Second {
		t.Errorf("override: %v %v %v", c.ProbeInterval, c.ProbeTimeout, err)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	for name, c := range map[string]Config{
		"profile":        {Profile: "fast"},
		"name too long":  {Name: strings.Repeat("n", MaxNameLen+1)},
		"zone not utf8":  {Zone: "\xff"},
		"region long":    {Region: strings.Repeat("r", MaxNameLen+1)},
		"label long":     {Label: strings.Repeat("l", 256)},
		"bind addr":      {BindAddr: "localhost"},
		"bind port":      {BindPort: -2},
		"bind port high": {BindPort: 65536},
		"advertise addr": {AdvertiseAddr: "x"},
		"advertise port": {AdvertisePort: -1},
		"seed":           {Seeds: []string{"[::1"}},
		"seed port":      {Seeds: []string{"host:0"}},
		"seed empty":     {Seeds: []string{""}},
		"probe":          {ProbeInterval: -time.Second},
		"probe timeout":  {ProbeInterval: time.Second, ProbeTimeout: time.Second},
		"suspicion":      {SuspicionMult: -1},
		"events":         {EventBuffer: -1},
		"log rate":       {LogRate: -1},
		"log rate nan":   {LogRate: math.NaN()},
		"log burst":      {LogBurst: -1},
		"keep down":      {KeepDown: -time.Second},
	} {
		if err := c.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
		// New rejects it too, before starting anything.
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("New with %s: %v, want ErrConfig", name, err)
		}
	}
}

func TestSplitSeed(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port uint16
	}{
		"10.0.0.1:7000":          {"10.0.0.1", 7000},
		"peers.default.svc:7946": {"peers.default.svc", 7946},
		"peers":                  {"peers", DefaultPort},
		"[::1]:9000":             {"::1", 9000},
		"::1":                    {"::1", DefaultPort},
	} {
		host, port, err := splitSeed(in)
		if err != nil || host != want.host || port != want.port {
			t.Errorf("%q: %q %d %v", in, host, port, err)
		}
	}
	for _, in := range []string{"", ":7000", "host:http", "host:70000", "[::1"} {
		if _, _, err := splitSeed(in); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", in, err)
		}
	}
}
