//go:build race

package sim

// raceEnabled is true under the race detector, which slows every node
// several times: AutoScale stretches time further to make up for it.
const raceEnabled = true
