package membership

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"unsafe"

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
	fillNodeTable(t, m.ml, 3, memberlist.StateSuspect)
	suspects := map[string]bool{}
	m.state.all(func(name string, st memberlist.NodeStateType) {
		if st == memberlist.StateSuspect {
			suspects[name] = true
		}
	})
	if len(suspects) != 3 || !suspects["fake-0000"] || !suspects["fake-0002"] {
		t.Errorf("all() reported the suspects %v, want fake-0000 to fake-0002", suspects)
	}
	if st, ok := m.state.get("fake-0001"); !ok || st != memberlist.StateSuspect {
		t.Errorf("get(fake-0001) = %v %v, want suspect", st, ok)
	}
	if _, err := newStateReader(nil); err == nil {
		t.Error("a nil memberlist was accepted")
	}
}

// fillNodeTable adds n made-up nodes to memberlist's node table, the way
// its own join would, so that benchmarks can read a large table without
// running a large cluster. Only for tests: the nodes do not exist.
func fillNodeTable(tb testing.TB, ml *memberlist.Memberlist, n int, st memberlist.NodeStateType) {
	tb.Helper()
	v := reflect.ValueOf(ml).Elem()
	writable := func(f reflect.Value) reflect.Value {
		return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	}
	nodeMap, nodes := writable(v.FieldByName("nodeMap")), writable(v.FieldByName("nodes"))
	lock := (*sync.RWMutex)(unsafe.Pointer(v.FieldByName("nodeLock").UnsafeAddr()))
	lock.Lock()
	defer lock.Unlock()
	for i := range n {
		ns := reflect.New(nodeMap.Type().Elem().Elem())
		name := fmt.Sprintf("fake-%04d", i)
		writable(ns.Elem().FieldByName("Node")).Set(reflect.ValueOf(memberlist.Node{Name: name}))
		writable(ns.Elem().FieldByName("State")).SetInt(int64(st))
		nodeMap.SetMapIndex(reflect.ValueOf(name), ns)
		nodes.Set(reflect.Append(nodes, ns))
	}
}

// BenchmarkStateReaderAll reads the state of every node of a 200-node
// table, as each node's poll does every half probe interval.
func BenchmarkStateReaderAll(b *testing.B) {
	m := startNode(b, testConfig("bench-states"))
	fillNodeTable(b, m.ml, 199, memberlist.StateAlive)
	suspects := 0
	b.ReportAllocs()
	for b.Loop() {
		m.state.all(func(_ string, st memberlist.NodeStateType) {
			if st == memberlist.StateSuspect {
				suspects++
			}
		})
	}
	if suspects != 0 {
		b.Fatalf("%d suspects in a table of alive nodes", suspects)
	}
}
