package input

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

func TestWantsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                    false,
		"text/event-stream":                   false,
		"application/x-ndjson":                true,
		"text/html, application/x-ndjson;q=1": true,
		"APPLICATION/NDJSON":                  true,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept", accept)
		if got := WantsNDJSON(r); got != want {
			t.Errorf("%q: %v", accept, got)
		}
	}
}

// FuzzWatchQuery feeds GET /v1/watch's query parser (and the Accept header
// reader) any query string a client can send. It must never panic; what it
// accepts names exactly one target, the one the query gives; what it
// refuses is a 400 naming a field, answered as one line of valid JSON.
func FuzzWatchQuery(f *testing.F) {
	for _, s := range []struct{ query, accept string }{
		{"key=user:1", ""},
		{"prefix=user/", "application/x-ndjson"},
		{"prefix=", "text/event-stream"},
		{"lease=L9", "application/jsonl;q=1, text/event-stream"},
		{"all", ""},
		{"all=true", "APPLICATION/NDJSON"},
		{"all=maybe", ""},
		{"key=", ""},
		{"key=a&prefix=b", ""},
		{"key=%zz", ""},
		{"key=a;b", ""},
		{"all=%00%0a", ""},
		{"", ",,;"},
	} {
		f.Add(s.query, s.accept)
	}
	f.Fuzz(func(t *testing.T, query, accept string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/v1/watch", RawQuery: query}, Header: http.Header{}}
		r.Header.Set("Accept", accept)
		_ = WantsNDJSON(r)
		kind, target, e := WatchTarget(r)
		q := r.URL.Query()
		if e != nil {
			if e.Status != http.StatusBadRequest || e.Field == "" || e.Code == "" {
				t.Fatalf("refusal %+v: want a 400 naming a field", e)
			}
			// Encoded as the API answers it (internal/cli's writeJSON).
			var w bytes.Buffer
			if err := json.NewEncoder(&w).Encode(e); err != nil {
				t.Fatal(err)
			}
			body := bytes.TrimSuffix(w.Bytes(), []byte("\n"))
			if !json.Valid(body) || bytes.ContainsAny(body, "\n\r") {
				t.Fatalf("refusal body is not one line of JSON: %q", w.String())
			}
			return
		}
		given := 0
		for _, name := range []string{"key", "prefix", "lease", "all"} {
			if q.Has(name) {
				given++
			}
		}
		if given != 1 {
			t.Fatalf("accepted %q, which gives %d targets", query, given)
		}
		switch {
		case q.Has("key"):
			if kind != WatchKey || target != q.Get("key") || target == "" {
				t.Fatalf("key query %q: kind %d target %q", query, kind, target)
			}
		case q.Has("lease"):
			if kind != WatchLease || target != q.Get("lease") || target == "" {
				t.Fatalf("lease query %q: kind %d target %q", query, kind, target)
			}
		case q.Has("prefix"):
			if kind != WatchPrefix || target != q.Get("prefix") {
				t.Fatalf("prefix query %q: kind %d target %q", query, kind, target)
			}
		default:
			if kind != WatchPrefix || target != "" {
				t.Fatalf("all query %q: kind %d target %q", query, kind, target)
			}
		}
	})
}
