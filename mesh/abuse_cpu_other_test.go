//go:build !linux

package mesh_test

import "time"

// secThreadCPU cannot tell one thread's CPU time here.
func secThreadCPU() (time.Duration, bool) { return 0, false }
