//go:build !unix

package bench

import "time"

// processCPU is not measured on this system: CPU figures stay empty.
func processCPU() time.Duration { return 0 }
