package membership

import (
	"errors"
	"reflect"
	"sync"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// stateReader reads memberlist's own view of each node's state.
//
// memberlist v0.7 reports joins, metadata updates and departures through
// its EventDelegate, but never says whether a departed node left or failed,
// and never reports suspicion at all: the State field of the Node it hands
// out is never set (its internal record shadows it with a field of the same
// name). Both facts live only in its unexported node table. This reader
// takes that table's read lock and reads the state field, by reflection,
// with the layout checked once up front: should a memberlist upgrade change
// the layout, newStateReader fails, the node logs it, and membership falls
// back to reporting every departure as failed and no suspicion. The test
// TestStateReaderLayout fails on such an upgrade so that it is noticed.
//
// all, which every node runs every half probe interval over the whole
// table, reads memberlist's node list rather than its map, through the
// field offsets checked here: reflection's map iteration cost 200
// allocations and about 20µs per poll of a 200-node table
// (BenchmarkStateReaderAll).
type stateReader struct {
	lock    *sync.RWMutex
	nodeMap reflect.Value // map[string]*memberlist.nodeState
	state   []int         // index path of nodeState.State
	key     reflect.Type  // the map's key type, string

	nodes   *[]unsafe.Pointer // memberlist's []*nodeState
	nameAt  uintptr           // offset of nodeState.Node.Name
	stateAt uintptr           // offset of nodeState.State
}

var errStateLayout = errors.New("membership: memberlist's node table has an unexpected layout")

// newStateReader checks the layout of ml's node table and returns a reader
// for it.
func newStateReader(ml *memberlist.Memberlist) (*stateReader, error) {
	if ml == nil {
		return nil, errStateLayout
	}
	v := reflect.ValueOf(ml).Elem()
	lockF := v.FieldByName("nodeLock")
	if !lockF.IsValid() || lockF.Type() != reflect.TypeFor[sync.RWMutex]() || !lockF.CanAddr() {
		return nil, errStateLayout
	}
	mapF := v.FieldByName("nodeMap")
	if !mapF.IsValid() || mapF.Kind() != reflect.Map || mapF.Type().Key().Kind() != reflect.String {
		return nil, errStateLayout
	}
	elem := mapF.Type().Elem()
	if elem.Kind() != reflect.Pointer || elem.Elem().Kind() != reflect.Struct {
		return nil, errStateLayout
	}
	// The shallowest field called State is the node table's own, the one
	// memberlist keeps up to date.
	sf, ok := elem.Elem().FieldByName("State")
	stateType := reflect.TypeFor[memberlist.NodeStateType]()
	if !ok || len(sf.Index) != 1 || sf.Type != stateType {
		return nil, errStateLayout
	}
	listF := v.FieldByName("nodes")
	if !listF.IsValid() || listF.Kind() != reflect.Slice || listF.Type().Elem() != elem || !listF.CanAddr() {
		return nil, errStateLayout
	}
	nameF, ok := elem.Elem().FieldByName("Name")
	if !ok || nameF.Type.Kind() != reflect.String {
		return nil, errStateLayout
	}
	nameAt, ok := offsetOf(elem.Elem(), nameF.Index)
	if !ok {
		return nil, errStateLayout
	}
	return &stateReader{
		lock:    (*sync.RWMutex)(lockF.Addr().UnsafePointer()),
		nodeMap: mapF,
		state:   sf.Index,
		key:     mapF.Type().Key(),
		nodes:   (*[]unsafe.Pointer)(listF.Addr().UnsafePointer()),
		nameAt:  nameAt,
		stateAt: sf.Offset,
	}, nil
}

// offsetOf returns the offset of the field at index path within t,
// following embedded structs (not pointers).
func offsetOf(t reflect.Type, path []int) (uintptr, bool) {
	var off uintptr
	for _, i := range path {
		if t.Kind() != reflect.Struct {
			return 0, false
		}
		f := t.Field(i)
		off += f.Offset
		t = f.Type
	}
	return off, true
}

// get returns memberlist's state of the node called name, and false when
// memberlist does not know it (any more). It must not be called from a
// memberlist delegate: memberlist holds the lock then.
func (r *stateReader) get(name string) (memberlist.NodeStateType, bool) {
	r.lock.RLock()
	defer r.lock.RUnlock()
	e := r.nodeMap.MapIndex(reflect.ValueOf(name).Convert(r.key))
	if !e.IsValid() || e.IsNil() {
		return 0, false
	}
	return memberlist.NodeStateType(e.Elem().FieldByIndex(r.state).Int()), true
}

// all calls fn with the state of every node memberlist knows, under its
// read lock: fn must be quick and must not call into memberlist.
func (r *stateReader) all(fn func(name string, st memberlist.NodeStateType)) {
	r.lock.RLock()
	defer r.lock.RUnlock()
	for _, n := range *r.nodes {
		if n == nil {
			continue
		}
		fn(*(*string)(unsafe.Add(n, r.nameAt)), *(*memberlist.NodeStateType)(unsafe.Add(n, r.stateAt)))
	}
}
