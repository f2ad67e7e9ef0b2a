package input

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
	for body, want := range map[string]Publish{
		`{"keys":["a","b"]}`:       {Keys: []string{"a", "b"}},
		`{"key":"a","replicas":2}`: {Keys: []string{"a"}, Mode: "replicas", Required: 2},
		`{"keys":["a"],"zones":3}`: {Keys: []string{"a"}, Mode: "zones", Required: 3},
		`{"keys":["a"],"zones":3,"zone_quorum":2,"timeout":"1.5s","scope":"global"}`: {
			Keys: []string{"a"}, Mode: "zones", Required: 3, ZoneQuorum: 2, Timeout: 1500 * time.Millisecond, Scope: syncbus.ScopeGlobal},
		" \n{\"keys\":[\"a\"],\"scope\":\"local\"}\n ": {Keys: []string{"a"}},
	} {
		got, e := DecodePublish([]byte(body))
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
		call, e := DecodePublish(data)
		if e != nil {
			if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", e.Status)
			}
			if e.Field == "" || e.Code == "" || strings.ContainsAny(e.Error, "\n\r") {
				t.Fatalf("refusal without a field or on several lines: %+v", e)
			}
			if !utf8.ValidString(e.Field) || len(e.Field) > 80 {
				t.Fatalf("field %q", e.Field)
			}
			return
		}
		if len(call.Keys) == 0 || len(call.Keys) > MaxPublishKeys {
			t.Fatalf("%d keys accepted", len(call.Keys))
		}
		for _, k := range call.Keys {
			if k == "" || len(k) > wire.MaxKeyLen {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		switch call.Mode {
		case "":
			if call.Required != 0 || call.ZoneQuorum != 0 {
				t.Fatalf("figures without a mode: %+v", call)
			}
		case "replicas", "zones":
			if call.Required < 1 || call.Required > maxAwaitCount {
				t.Fatalf("required %d accepted", call.Required)
			}
		default:
			t.Fatalf("mode %q", call.Mode)
		}
		if call.ZoneQuorum != 0 && (call.Mode != "zones" || call.ZoneQuorum < 0) {
			t.Fatalf("zone quorum %d with mode %q", call.ZoneQuorum, call.Mode)
		}
		if call.Timeout < 0 || call.Timeout > MaxAwaitTimeout {
			t.Fatalf("timeout %v accepted", call.Timeout)
		}
		// Round trip: the call, written as a request, decodes to itself.
		req := PublishRequest{Keys: call.Keys}
		switch call.Mode {
		case "replicas":
			req.Replicas = &call.Required
		case "zones":
			req.Zones = &call.Required
		}
		if call.ZoneQuorum > 0 {
			req.ZoneQuorum = &call.ZoneQuorum
		}
		if call.Timeout > 0 {
			req.Timeout = call.Timeout.String()
		}
		if call.Scope == syncbus.ScopeGlobal {
			req.Scope = "global"
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, e := DecodePublish(body)
		if e != nil || !reflect.DeepEqual(again, call) {
			t.Fatalf("round trip of %s: %+v %+v, want %+v", body, again, e, call)
		}
	})
}

func FuzzDecodeRevoke(f *testing.F) {
	f.Add([]byte(`{"lease":"l1"}`))
	f.Add([]byte(`{"lease":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lease, e := DecodeRevoke(data)
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
