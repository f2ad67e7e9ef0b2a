//go:build !unix

package mesh_test

import "time"

// processCPU is unknown here: the cpu-us/op figures read 0.
func processCPU() time.Duration { return 0 }
