package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func TestDecodePublishAccepts(t *testing.T) {
	for body, want := range map[string]publishCall{
		`{"keys":["a","b"]}`:       {keys: []string{"a", "b"}},
		`{"key":"a","replicas":2}`: {keys: []string{"a"}, mode: "replicas", required: 2},
		`{"keys":["a"],"zones":3}`: {keys: []string{"a"}, mode: "zones", required: 3},
		`{"keys":["a"],"zones":3,"zone_quorum":2,"timeout":"1.5s","scope":"global"}`: {
			keys: []string{"a"}, mode: "zones", required: 3, zoneQuorum: 2, timeout: 1500 * time.Millisecond, scope: syncbus.ScopeGlobal},
		" \n{\"keys\":[\"a\"],\"scope\":\"local\"}\n ": {keys: []string{"a"}},
	} {
		got, e := decodePublish([]byte(body))
		if e != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %+v, want %+v", body, got, e, want)
		}
	}
}

// FuzzDecodePublish feeds the publish body decoder arbitrary bytes: it
// must never panic; what it accepts must be a valid call that survives a
// round trip through JSON; what it refuses must be a 400 or 413 naming a
// field, on one line.
func FuzzDecodePublish(f *testing.F) {
	for _, s := range []string{
		`{"keys":["user:1"]}`,
		`{"key":"user:1","replicas":2,"timeout":"500ms"}`,
		`{"keys":["a","b"],"zones":3,"zone_quorum":2,"scope":"global"}`,
		`{"keys":["a"],"replicas":1,"zones":1}`,
		`{"keys":[""]}`,
		`{"keys":"a"}`,
		`{"keys":["a"],"timeout":"1e9h"}`,
		`{"keys":["a"]}{}`,
		`[`,
		`{"keys":["\ud800"]}`,
		`{"replicas":99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		call, e := decodePublish(data)
		if e != nil {
			if e.status != http.StatusBadRequest && e.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", e.status)
			}
			if e.Field == "" || e.Code == "" || strings.ContainsAny(e.Error, "\n\r") {
				t.Fatalf("refusal without a field or on several lines: %+v", e)
			}
			if !utf8.ValidString(e.Field) || len(e.Field) > 80 {
				t.Fatalf("field %q", e.Field)
			}
			return
		}
		if len(call.keys) == 0 || len(call.keys) > maxPublishKeys {
			t.Fatalf("%d keys accepted", len(call.keys))
		}
		for _, k := range call.keys {
			if k == "" || len(k) > wire.MaxKeyLen {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		switch call.mode {
		case "":
			if call.required != 0 || call.zoneQuorum != 0 {
				t.Fatalf("figures without a mode: %+v", call)
			}
		case "replicas", "zones":
			if call.required < 1 || call.required > maxAwaitCount {
				t.Fatalf("required %d accepted", call.required)
			}
		default:
			t.Fatalf("mode %q", call.mode)
		}
		if call.zoneQuorum != 0 && (call.mode != "zones" || call.zoneQuorum < 0) {
			t.Fatalf("zone quorum %d with mode %q", call.zoneQuorum, call.mode)
		}
		if call.timeout < 0 || call.timeout > maxAwaitTimeout {
			t.Fatalf("timeout %v accepted", call.timeout)
		}
		// Round trip: the call, written as a request, decodes to itself.
		req := publishRequest{Keys: call.keys}
		switch call.mode {
		case "replicas":
			req.Replicas = &call.required
		case "zones":
			req.Zones = &call.required
		}
		if call.zoneQuorum > 0 {
			req.ZoneQuorum = &call.zoneQuorum
		}
		if call.timeout > 0 {
			req.Timeout = call.timeout.String()
		}
		if call.scope == syncbus.ScopeGlobal {
			req.Scope = "global"
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, e := decodePublish(body)
		if e != nil || !reflect.DeepEqual(again, call) {
			t.Fatalf("round trip of %s: %+v %+v, want %+v", body, again, e, call)
		}
	})
}

func FuzzDecodeRevoke(f *testing.F) {
	f.Add([]byte(`{"lease":"l1"}`))
	f.Add([]byte(`{"lease":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lease, e := decodeRevoke(data)
		if e != nil {
			if e.Field == "" {
				t.Fatalf("refusal without a field: %+v", e)
			}
			return
		}
		if lease == "" || len(lease) > wire.MaxKeyLen {
			t.Fatalf("lease of %d bytes accepted", len(lease))
		}
	})
}
