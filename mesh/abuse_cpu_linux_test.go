//go:build linux

package mesh_test

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD, which package syscall does not
// name: the calling thread's usage only.
const rusageThread = 1

// secThreadCPU returns the CPU time (user and system) the calling OS
// thread has used. The caller locks its goroutine to the thread.
func secThreadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
