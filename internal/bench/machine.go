package bench

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Machine describes where a run took place.
type Machine struct {
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model,omitempty"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	// LoadAverage is the 1, 5 and 15-minute load average when the run
	// started (Linux): above the number of CPUs, other work competed with
	// the run.
	LoadAverage string `json:"load_average,omitempty"`
	// Modules are the versions of the clients and servers built in.
	Modules map[string]string `json:"modules,omitempty"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		m.Modules = map[string]string{}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/nats-io/nats-server/v2", "github.com/nats-io/nats.go", "github.com/redis/go-redis/v9",
				"github.com/IBM/sarama", "github.com/twmb/franz-go/pkg/kfake", "github.com/hashicorp/memberlist":
				m.Modules[d.Path] = d.Version
			}
		}
	}
	return m
}

// moduleVersion returns the version of a module built in, or "".
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return ""
}
