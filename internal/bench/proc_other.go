//go:build !linux

package bench

import (
	"os/exec"
	"time"
)

// childCPU is not measured here: a child's CPU is counted once it exits.
func childCPU(int) (time.Duration, bool) { return 0, false }

// dieWithParent has no portable equivalent: the child is stopped by Close.
func dieWithParent(*exec.Cmd) {}
