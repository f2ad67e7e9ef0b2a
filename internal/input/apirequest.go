package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Limits of the HTTP API's requests. A body over MaxBodyBytes is refused
// with 413 before it is decoded; the others are 400s naming the field.
const (
	MaxBodyBytes    = 1 << 20
	MaxPublishKeys  = 1000
	maxAwaitCount   = 1 << 16
	MaxAwaitTimeout = 5 * time.Minute
)

// PublishRequest is the body of POST /v1/publish, as `warp publish` sends
// it.
type PublishRequest struct {
	// Keys are the keys to invalidate ("key" is accepted for one key).
	Keys []string `json:"keys"`
	Key  string   `json:"key"`
	// Replicas asks to wait until that many other nodes applied each key
	// (PublishAndAwait); Zones until that many zones did
	// (PublishAndAwaitTopology). At most one of them.
	Replicas *int `json:"replicas"`
	Zones    *int `json:"zones"`
	// ZoneQuorum, with Zones, makes a zone count once that many of its
	// nodes (or all its alive ones, if fewer) applied the key.
	ZoneQuorum *int `json:"zone_quorum"`
	// Timeout bounds the call, as a Go duration ("500ms", "2s"). Default:
	// the node's ack timeout.
	Timeout string `json:"timeout"`
	// Scope is "local" (default) or "global".
	Scope string `json:"scope"`
}

// Publish is a validated publish request.
type Publish struct {
	Keys       []string      // 1 to MaxPublishKeys valid keys
	Mode       string        // "", "replicas" or "zones"
	Required   int           // with a Mode: the replicas or zones to wait for
	ZoneQuorum int           // with Mode "zones": 0, or the nodes a zone needs
	Timeout    time.Duration // 0: the bus's default
	Scope      syncbus.Scope
}

// RevokeRequest is the body of POST /v1/revoke.
type RevokeRequest struct {
	Lease string `json:"lease"`
}

// APIError is an error answer of the HTTP API: its status and the JSON
// body {"error": …, "code": …, "field": …}.
type APIError struct {
	Status int    `json:"-"`
	Error  string `json:"error"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

// BadField returns the 400 answer for a request whose field is wrong; its
// message is the field's name, a colon and the formatted reason.
func BadField(field, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "bad_request", Field: field,
		Error: field + ": " + fmt.Sprintf(format, args...)}
}

func tooLarge() *APIError {
	return &APIError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "body",
		Error: fmt.Sprintf("body: larger than %d bytes", MaxBodyBytes)}
}

// ReadBody reads at most MaxBodyBytes of r's body; more is a 413.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *APIError) {
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, BadField("body", "cannot read it: %v", err)
	}
	return data, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// values of the wrong type and anything after the object. Its errors name
// the field at fault ("body" when the JSON itself is broken).
func decodeStrict(data []byte, v any) *APIError {
	if len(data) > MaxBodyBytes {
		return tooLarge()
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return BadField("body", "want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return BadField(te.Field, "want %v, got JSON %s", te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := Printable(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
			if name == "" {
				name = `""` // a field named by the empty string still needs naming
			}
			return BadField(name, "unknown field")
		}
		return BadField("body", "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadField("body", "more data after the JSON object")
	}
	return nil
}

// Printable makes a client-supplied string safe to echo in one line: at
// most 64 bytes of it, invalid UTF-8 and control characters replaced by '?'.
func Printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// DecodePublish turns the body of POST /v1/publish into a call. It never
// panics, whatever the bytes; every refusal names its field.
func DecodePublish(data []byte) (Publish, *APIError) {
	var req PublishRequest
	if e := decodeStrict(data, &req); e != nil {
		return Publish{}, e
	}
	var c Publish
	switch {
	case req.Key != "" && len(req.Keys) > 0:
		return c, BadField("key", "give keys or key, not both")
	case req.Key != "":
		c.Keys = []string{req.Key}
	default:
		c.Keys = req.Keys
	}
	if len(c.Keys) == 0 {
		return c, BadField("keys", "give at least one key")
	}
	if len(c.Keys) > MaxPublishKeys {
		return c, BadField("keys", "%d keys; at most %d per request", len(c.Keys), MaxPublishKeys)
	}
	for i, k := range c.Keys {
		field := fmt.Sprintf("keys[%d]", i)
		if req.Key != "" {
			field = "key"
		}
		switch {
		case k == "":
			return c, BadField(field, "empty key")
		case len(k) > wire.MaxKeyLen:
			return c, BadField(field, "%d bytes; at most %d", len(k), wire.MaxKeyLen)
		case !utf8.ValidString(k):
			return c, BadField(field, "not UTF-8")
		}
	}
	switch {
	case req.Replicas != nil && req.Zones != nil:
		return c, BadField("replicas", "give replicas or zones, not both")
	case req.Replicas != nil:
		if *req.Replicas < 1 || *req.Replicas > maxAwaitCount {
			return c, BadField("replicas", "%d out of range (1..%d)", *req.Replicas, maxAwaitCount)
		}
		c.Mode, c.Required = "replicas", *req.Replicas
	case req.Zones != nil:
		if *req.Zones < 1 || *req.Zones > maxAwaitCount {
			return c, BadField("zones", "%d out of range (1..%d)", *req.Zones, maxAwaitCount)
		}
		c.Mode, c.Required = "zones", *req.Zones
	}
	if req.ZoneQuorum != nil {
		if c.Mode != "zones" {
			return c, BadField("zone_quorum", "needs zones")
		}
		if *req.ZoneQuorum < 1 || *req.ZoneQuorum > maxAwaitCount {
			return c, BadField("zone_quorum", "%d out of range (1..%d)", *req.ZoneQuorum, maxAwaitCount)
		}
		c.ZoneQuorum = *req.ZoneQuorum
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > MaxAwaitTimeout {
			return c, BadField("timeout", "%q: want a duration such as \"2s\", at most %v", Printable(req.Timeout), MaxAwaitTimeout)
		}
		c.Timeout = d
	}
	switch req.Scope {
	case "", "local":
	case "global":
		c.Scope = syncbus.ScopeGlobal
	default:
		return c, BadField("scope", "%q: want local or global", Printable(req.Scope))
	}
	return c, nil
}

// DecodeRevoke turns the body of POST /v1/revoke into a lease ID.
func DecodeRevoke(data []byte) (string, *APIError) {
	var req RevokeRequest
	if e := decodeStrict(data, &req); e != nil {
		return "", e
	}
	switch {
	case req.Lease == "":
		return "", BadField("lease", "give the lease ID")
	case len(req.Lease) > wire.MaxKeyLen:
		return "", BadField("lease", "%d bytes; at most %d", len(req.Lease), wire.MaxKeyLen)
	case !utf8.ValidString(req.Lease):
		return "", BadField("lease", "not UTF-8")
	}
	return req.Lease, nil
}
