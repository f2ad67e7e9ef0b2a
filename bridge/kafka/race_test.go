//go:build race

package kafka_test

// underRace says the race detector is on: the suite runs once then.
const underRace = true
