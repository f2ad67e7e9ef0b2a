package membership

import (
	"testing"

	"github.com/hashicorp/memberlist"
)

// TestStateReaderLayout fails when a memberlist upgrade changes the node
// table this package reads suspicion and departures from.
func TestStateReaderLayout(t *testing.T) {
	m := startNode(t, testConfig("solo"))
	if m.state == nil {
		t.Fatal("memberlist's node table has an unexpected layout; see stateReader")
	}
	if st, ok := m.state.get("solo"); !ok || st != memberlist.StateAlive {
		t.Errorf("own state %v %v, want alive", st, ok)
	}
	if _, ok := m.state.get("nobody"); ok {
		t.Error("an unknown node was found")
	}
	seen := 0
	m.state.all(func(name string, st memberlist.NodeStateType) {
		if name == "solo" && st == memberlist.StateAlive {
			seen++
		}
	})
	if seen != 1 {
		t.Errorf("all() saw the local node %d times", seen)
	}
	if _, err := newStateReader(nil); err == nil {
		t.Error("a nil memberlist was accepted")
	}
}
