package input

import (
	"net/http"
	"strings"
)

// WatchKind is what a watch stream follows.
type WatchKind int

// The kinds of watch streams.
const (
	WatchKey    WatchKind = iota // one key's events
	WatchPrefix                  // the events of every key with a prefix ("" for all keys)
	WatchLease                   // one lease's revocations
)

// WatchTarget parses the query of GET /v1/watch: exactly one of key=,
// prefix=, lease= or all. It returns what to watch: for WatchKey and
// WatchLease a non-empty key or lease ID, for WatchPrefix the prefix.
func WatchTarget(r *http.Request) (kind WatchKind, target string, e *APIError) {
	q := r.URL.Query()
	n := 0
	for _, name := range []string{"key", "prefix", "lease", "all"} {
		if q.Has(name) {
			n++
		}
	}
	if n != 1 {
		return 0, "", BadField("key", "give exactly one of key=KEY, prefix=PREFIX, lease=ID or all")
	}
	switch {
	case q.Has("key"):
		if q.Get("key") == "" {
			return 0, "", BadField("key", "empty key")
		}
		return WatchKey, q.Get("key"), nil
	case q.Has("lease"):
		if q.Get("lease") == "" {
			return 0, "", BadField("lease", "empty lease ID")
		}
		return WatchLease, q.Get("lease"), nil
	case q.Has("prefix"):
		return WatchPrefix, q.Get("prefix"), nil
	}
	switch q.Get("all") {
	case "", "1", "true":
	default:
		return 0, "", BadField("all", "%q: want all, all=1 or all=true", Printable(q.Get("all")))
	}
	return WatchPrefix, "", nil
}

// WantsNDJSON reports whether the client asked for newline-delimited JSON
// rather than Server-Sent Events.
func WantsNDJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/x-ndjson", "application/ndjson", "application/jsonl":
			return true
		}
	}
	return false
}
