package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// These tests hold the codec to "plain msgpack on the wire": a general
// msgpack library reads what it writes, and it reads what such a library
// writes, including wider integer forms and the fields a newer version
// appends.

func TestLibraryReadsOurFrames(t *testing.T) {
	f := sampleEvents(3)
	f.Events[2].VectorClock = map[string]uint64{"b": 2, "a": 1}
	f.Events[2].Origin = "gw"
	body, err := wire.AppendEvents(nil, f, false)
	if err != nil {
		t.Fatal(err)
	}
	var v []any
	if err := msgpack.Unmarshal(body[1:], &v); err != nil {
		t.Fatalf("msgpack library cannot read an events payload: %v", err)
	}
	if len(v) != 6 || v[0] != f.Origin || v[2] != f.Zone || v[3] != f.Region {
		t.Fatalf("frame fields read by the library: %v", v[:5])
	}
	evs := v[5].([]any)
	if len(evs) != 3 {
		t.Fatalf("library sees %d events", len(evs))
	}
	e0 := evs[0].([]any)
	if len(e0) != 7 || e0[2] != f.Events[0].Key || !reflect.DeepEqual(e0[1], f.Events[0].ID[:]) {
		t.Fatalf("first event as the library reads it: %v", e0)
	}
	e2 := evs[2].([]any)
	if len(e2) != 11 || e2[7] != "gw" {
		t.Fatalf("third event as the library reads it: %v", e2)
	}
	if vc := e2[10].(map[string]any); len(vc) != 2 {
		t.Fatalf("vector clock as the library reads it: %v", vc)
	}
}

// libEncode writes v with the library, forcing full-width integers so the
// decoder meets forms our encoder never writes.
func libEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWeReadLibraryFramesWithNewerFields(t *testing.T) {
	id := syncbus.NewIDGenerator().Next()
	// A frame from a newer version: extra fields on the frame and on the
	// event (of several types, nested), integers in wide forms.
	payload := libEncode(t, []any{
		"origin", uint64(7), "zone", "region", uint32(1),
		[]any{
			[]any{int64(10), id[:], "user:1", uint16(1), uint64(1), uint8(1), int64(-3),
				"", nil, "r2", map[string]any{"n1": uint64(4)},
				"future", []any{1, []any{2, 3}, map[string]any{"x": 1.5}}, true},
		},
		map[string]any{"future": []byte{1, 2, 3}},
		float64(3.25),
	})
	body := append([]byte{byte(wire.FrameEvents)}, payload...)
	var f wire.Events
	if err := wire.DecodeEvents(body, &f); err != nil {
		t.Fatalf("decode of a newer frame: %v", err)
	}
	want := wire.Events{Origin: "origin", Boot: 7, Zone: "zone", Region: "region", Flags: 1, Events: []wire.Event{{
		Seq: 10, ID: id, Key: "user:1", Op: syncbus.OpLeaseRevoke, Scope: syncbus.ScopeGlobal, Flags: 1, Time: -3,
		Region: "r2", VectorClock: map[string]uint64{"n1": 4},
	}}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("got  %+v\nwant %+v", f, want)
	}

	presence := append([]byte{byte(wire.FramePresence)}, libEncode(t, []any{"n", "z", "r", uint64(1), int64(time.Second), false, "newer"})...)
	var p wire.Presence
	if err := wire.DecodePresence(presence, &p); err != nil || p.Interval != time.Second || p.Node != "n" {
		t.Fatalf("presence with a newer field: %+v, %v", p, err)
	}
}

func TestWeRejectLibraryFramesWithWrongTypes(t *testing.T) {
	cases := map[string][]any{
		"string boot":      {"o", "7", "z", "r", 0, []any{}},
		"negative boot":    {"o", -7, "z", "r", 0, []any{}},
		"flags over byte":  {"o", 7, "z", "r", 300, []any{}},
		"too few fields":   {"o", 7, "z", "r", 0},
		"events not array": {"o", 7, "z", "r", 0, map[string]any{}},
		"short id":         {"o", 7, "", "", 0, []any{[]any{1, []byte{1, 2}, "k", 0, 0, 0, 0}}},
		"float seq":        {"o", 7, "", "", 0, []any{[]any{1.5, make([]byte, 16), "k", 0, 0, 0, 0}}},
		"op 9":             {"o", 7, "", "", 0, []any{[]any{1, make([]byte, 16), "k", 9, 0, 0, 0}}},
		"empty key":        {"o", 7, "", "", 0, []any{[]any{1, make([]byte, 16), "", 0, 0, 0, 0}}},
		"vc not map":       {"o", 7, "", "", 0, []any{[]any{1, make([]byte, 16), "k", 0, 0, 0, 0, "", "", "", []any{}}}},
		"short event":      {"o", 7, "", "", 0, []any{[]any{1, make([]byte, 16), "k", 0, 0, 0}}},
		"uint64 overflow":  {"o", 7, "", "", 0, []any{[]any{uint64(1 << 63), make([]byte, 16), "k", 0, 0, 0, 0}}},
	}
	for name, v := range cases {
		body := append([]byte{byte(wire.FrameEvents)}, libEncode(t, v)...)
		if err := wire.DecodeEvents(body, new(wire.Events)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}

	// A vector clock naming a node twice: the event is the payload's last
	// value, so its clock can be appended by hand (a Go map cannot hold it).
	payload := libEncode(t, []any{"o", 7, "", "", 0, []any{[]any{1, make([]byte, 16), "k", 0, 0, 0, 0, "", "", ""}}})
	i := bytes.IndexByte(payload, 0x9a) // the event's 10-element array header
	if i < 0 {
		t.Fatal("event header not found")
	}
	payload[i] = 0x9b
	payload = append(payload, 0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02)
	body := append([]byte{byte(wire.FrameEvents)}, payload...)
	if err := wire.DecodeEvents(body, new(wire.Events)); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("repeated vector clock name: err = %v, want ErrMalformed", err)
	}
	payload[len(payload)-2] = 'b' // distinct names decode
	if err := wire.DecodeEvents(append([]byte{byte(wire.FrameEvents)}, payload...), new(wire.Events)); err != nil {
		t.Errorf("hand-made vector clock: %v", err)
	}
}
