package protocol

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestInteraction runs the scripts in testdata: each drives a few cores
// over a scripted network and holds the expected transcript. Regenerate
// the transcripts after an intended change with
//
//	go test ./mesh/internal/protocol -run TestInteraction -rewrite
//
// and read the diff: it is the behaviour change.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newEnv(t)
		datadriven.RunTest(t, path, e.handle)
	})
}
