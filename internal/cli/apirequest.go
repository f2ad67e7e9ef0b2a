package cli

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

// Limits of the HTTP API's requests. A body over maxBodyBytes is refused
// with 413 before it is decoded; the others are 400s naming the field.
const (
	maxBodyBytes    = 1 << 20
	maxPublishKeys  = 1000
	maxAwaitCount   = 1 << 16
	maxAwaitTimeout = 5 * time.Minute
)

// publishRequest is the body of POST /v1/publish.
type publishRequest struct {
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

// publishCall is a validated publish request.
type publishCall struct {
	keys       []string
	mode       string // "", "replicas" or "zones"
	required   int
	zoneQuorum int
	timeout    time.Duration // 0: the bus's default
	scope      syncbus.Scope
}

// revokeRequest is the body of POST /v1/revoke.
type revokeRequest struct {
	Lease string `json:"lease"`
}

// apiError is an error answer of the HTTP API: its status and the JSON
// body {"error": …, "code": …, "field": …}.
type apiError struct {
	status int
	Error  string `json:"error"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

func badField(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "bad_request", Field: field,
		Error: field + ": " + fmt.Sprintf(format, args...)}
}

func tooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "body",
		Error: fmt.Sprintf("body: larger than %d bytes", maxBodyBytes)}
}

// readBody reads at most maxBodyBytes of r's body; more is a 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > maxBodyBytes {
		return nil, tooLarge()
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, badField("body", "cannot read it: %v", err)
	}
	return data, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// values of the wrong type and anything after the object. Its errors name
// the field at fault ("body" when the JSON itself is broken).
func decodeStrict(data []byte, v any) *apiError {
	if len(data) > maxBodyBytes {
		return tooLarge()
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return badField("body", "want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return badField(te.Field, "want %v, got JSON %s", te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := printable(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
			if name == "" {
				name = `""` // a field named by the empty string still needs naming
			}
			return badField(name, "unknown field")
		}
		return badField("body", "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badField("body", "more data after the JSON object")
	}
	return nil
}

// printable makes a client-supplied name safe to echo in one line.
func printable(s string) string {
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

// decodePublish turns the body of POST /v1/publish into a call. It never
// panics, whatever the bytes; every refusal names its field.
func decodePublish(data []byte) (publishCall, *apiError) {
	var req publishRequest
	if e := decodeStrict(data, &req); e != nil {
		return publishCall{}, e
	}
	var c publishCall
	switch {
	case req.Key != "" && len(req.Keys) > 0:
		return c, badField("key", "give keys or key, not both")
	case req.Key != "":
		c.keys = []string{req.Key}
	default:
		c.keys = req.Keys
	}
	if len(c.keys) == 0 {
		return c, badField("keys", "give at least one key")
	}
	if len(c.keys) > maxPublishKeys {
		return c, badField("keys", "%d keys; at most %d per request", len(c.keys), maxPublishKeys)
	}
	for i, k := range c.keys {
		field := fmt.Sprintf("keys[%d]", i)
		if req.Key != "" {
			field = "key"
		}
		switch {
		case k == "":
			return c, badField(field, "empty key")
		case len(k) > wire.MaxKeyLen:
			return c, badField(field, "%d bytes; at most %d", len(k), wire.MaxKeyLen)
		case !utf8.ValidString(k):
			return c, badField(field, "not UTF-8")
		}
	}
	switch {
	case req.Replicas != nil && req.Zones != nil:
		return c, badField("replicas", "give replicas or zones, not both")
	case req.Replicas != nil:
		if *req.Replicas < 1 || *req.Replicas > maxAwaitCount {
			return c, badField("replicas", "%d out of range (1..%d)", *req.Replicas, maxAwaitCount)
		}
		c.mode, c.required = "replicas", *req.Replicas
	case req.Zones != nil:
		if *req.Zones < 1 || *req.Zones > maxAwaitCount {
			return c, badField("zones", "%d out of range (1..%d)", *req.Zones, maxAwaitCount)
		}
		c.mode, c.required = "zones", *req.Zones
	}
	if req.ZoneQuorum != nil {
		if c.mode != "zones" {
			return c, badField("zone_quorum", "needs zones")
		}
		if *req.ZoneQuorum < 1 || *req.ZoneQuorum > maxAwaitCount {
			return c, badField("zone_quorum", "%d out of range (1..%d)", *req.ZoneQuorum, maxAwaitCount)
		}
		c.zoneQuorum = *req.ZoneQuorum
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > maxAwaitTimeout {
			return c, badField("timeout", "%q: want a duration such as \"2s\", at most %v", printable(req.Timeout), maxAwaitTimeout)
		}
		c.timeout = d
	}
	switch req.Scope {
	case "", "local":
	case "global":
		c.scope = syncbus.ScopeGlobal
	default:
		return c, badField("scope", "%q: want local or global", printable(req.Scope))
	}
	return c, nil
}

// decodeRevoke turns the body of POST /v1/revoke into a lease ID.
func decodeRevoke(data []byte) (string, *apiError) {
	var req revokeRequest
	if e := decodeStrict(data, &req); e != nil {
		return "", e
	}
	switch {
	case req.Lease == "":
		return "", badField("lease", "give the lease ID")
	case len(req.Lease) > wire.MaxKeyLen:
		return "", badField("lease", "%d bytes; at most %d", len(req.Lease), wire.MaxKeyLen)
	case !utf8.ValidString(req.Lease):
		return "", badField("lease", "not UTF-8")
	}
	return req.Lease, nil
}
