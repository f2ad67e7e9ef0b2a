//go:build !race

package warptest

// RaceEnabled is true when the binary was built with -race. Tests use it
// to skip scenarios too heavy for the race detector, beside a lighter twin
// that runs under it.
const RaceEnabled = false
