//go:build race

package mesh_test

import "time"

// Sizes of the abuse tests under the race detector, which slows every
// node several times over: lighter floods of the same shape.
const (
	secBadFlood  = 20_000
	secKeyFlood  = 40_000
	secDataFlood = 2 * time.Second
	secKeyLen    = 1000
)
