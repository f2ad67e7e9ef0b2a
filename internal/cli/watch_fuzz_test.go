package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

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
		_ = wantsNDJSON(r)
		kind, target, e := watchTarget(r)
		q := r.URL.Query()
		if e != nil {
			if e.status != http.StatusBadRequest || e.Field == "" || e.Code == "" {
				t.Fatalf("refusal %+v: want a 400 naming a field", e)
			}
			w := httptest.NewRecorder()
			writeAPIError(w, e)
			body := bytes.TrimSuffix(w.Body.Bytes(), []byte("\n"))
			if !json.Valid(body) || bytes.ContainsAny(body, "\n\r") {
				t.Fatalf("refusal body is not one line of JSON: %q", w.Body.String())
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
			if kind != watchKey || target != q.Get("key") || target == "" {
				t.Fatalf("key query %q: kind %d target %q", query, kind, target)
			}
		case q.Has("lease"):
			if kind != watchLease || target != q.Get("lease") || target == "" {
				t.Fatalf("lease query %q: kind %d target %q", query, kind, target)
			}
		case q.Has("prefix"):
			if kind != watchPrefix || target != q.Get("prefix") {
				t.Fatalf("prefix query %q: kind %d target %q", query, kind, target)
			}
		default:
			if kind != watchPrefix || target != "" {
				t.Fatalf("all query %q: kind %d target %q", query, kind, target)
			}
		}
	})
}
