package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/internal/input"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// apiBus is what the HTTP API needs of a node: a *mesh.MeshBus, or in
// tests an in-memory bus.
type apiBus interface {
	syncbus.Bus
	syncbus.PrefixSubscriber
	syncbus.MemberLister
	syncbus.MetricsReporter
	Name() string
}

// apiConfig configures the HTTP API of a node.
type apiConfig struct {
	Bus    apiBus
	Logger *slog.Logger
	// ExpectMembers is how many alive members (this node included) the
	// node must know before /readyz answers 200. Values < 1 mean 1.
	ExpectMembers int
	// KeepAlive is the interval of the comments that keep an idle
	// Server-Sent-Events stream open through proxies (default 15s).
	KeepAlive time.Duration
	// WriteTimeout bounds one write to a watching client: a client that
	// stops reading is dropped rather than holding its stream (default 10s).
	WriteTimeout time.Duration
	// Metrics serves GET /metrics; nil answers 404.
	Metrics http.Handler
}

// numWatchKinds counts the kinds of watch streams (input.WatchKind), for
// the subscriptions gauge.
const numWatchKinds = 3

var watchKindNames = [numWatchKinds]string{input.WatchKey: "key", input.WatchPrefix: "prefix", input.WatchLease: "lease"}

// apiServer serves a node's HTTP API. It is safe for concurrent use.
type apiServer struct {
	cfg     apiConfig
	watches [numWatchKinds]atomic.Int64
}

func newAPIServer(cfg apiConfig) *apiServer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	cfg.ExpectMembers = max(cfg.ExpectMembers, 1)
	return &apiServer{cfg: cfg}
}

// watching returns the number of open watch streams by kind.
func (s *apiServer) watching() [numWatchKinds]int64 {
	var out [numWatchKinds]int64
	for i := range out {
		out[i] = s.watches[i].Load()
	}
	return out
}

// handler returns the API's routes. Wrong methods get 405 from ServeMux.
func (s *apiServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/publish", s.publish)
	mux.HandleFunc("POST /v1/revoke", s.revoke)
	mux.HandleFunc("GET /v1/watch", s.watch)
	mux.HandleFunc("GET /v1/members", s.members)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if method, ok := apiMethods[r.URL.Path]; ok {
			w.Header().Set("Allow", method)
			writeJSON(w, http.StatusMethodNotAllowed, input.APIError{Error: r.URL.Path + " takes " + method, Code: "method_not_allowed"})
			return
		}
		writeJSON(w, http.StatusNotFound, input.APIError{Error: "no such endpoint: " + input.Printable(r.URL.Path), Code: "not_found"})
	})
	return mux
}

// apiMethods is the method of each endpoint, for the 405 answers.
var apiMethods = map[string]string{
	"/v1/publish": http.MethodPost, "/v1/revoke": http.MethodPost,
	"/v1/watch": http.MethodGet, "/v1/members": http.MethodGet,
	"/healthz": http.MethodGet, "/readyz": http.MethodGet, "/metrics": http.MethodGet,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client may have gone; nothing to do about it
}

func writeAPIError(w http.ResponseWriter, e *input.APIError) {
	writeJSON(w, e.Status, e)
}

// keyResult is the outcome of one key of a publish.
type keyResult struct {
	Key        string   `json:"key"`
	AckedNodes []string `json:"acked_nodes"`
	AckedZones []string `json:"acked_zones"`
	Latency    string   `json:"latency"`
	LatencyMS  float64  `json:"latency_ms"`
}

// publishResponse is the 200 answer of POST /v1/publish.
type publishResponse struct {
	Mode       string      `json:"mode"` // "none", "replicas" or "zones"
	Required   int         `json:"required,omitempty"`
	ZoneQuorum int         `json:"zone_quorum,omitempty"`
	Results    []keyResult `json:"results"`
	Latency    string      `json:"latency"`
	LatencyMS  float64     `json:"latency_ms"`
}

// quorumFailure is the answer of POST /v1/publish when acknowledgements
// fell short: the typed error's figures.
type quorumFailure struct {
	Error        string   `json:"error"`
	Code         string   `json:"code"` // quorum_not_satisfied or deadline_exceeded
	Key          string   `json:"key"`
	Mode         string   `json:"mode"`
	Required     int      `json:"required"`
	ZoneQuorum   int      `json:"zone_quorum,omitempty"`
	Available    int      `json:"available"`
	FailFast     bool     `json:"fail_fast"`
	AckedNodes   []string `json:"acked_nodes"`
	AckedZones   []string `json:"acked_zones"`
	MissingZones []string `json:"missing_zones,omitempty"`
}

// maxParallelAwaits bounds the awaiting calls one request runs at once.
const maxParallelAwaits = 16

func (s *apiServer) publish(w http.ResponseWriter, r *http.Request) {
	data, e := input.ReadBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	call, e := input.DecodePublish(data)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	ctx := r.Context()
	if call.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, call.Timeout)
		defer cancel()
	}
	start := time.Now()
	results := make([]keyResult, len(call.Keys))
	errs := make([]error, len(call.Keys))
	if call.Mode == "" {
		// Plain publishes return at once (unless flow control holds them):
		// one after the other keeps their order.
		for i, k := range call.Keys {
			t0 := time.Now()
			errs[i] = s.cfg.Bus.Publish(ctx, k, syncbus.WithScope(call.Scope))
			results[i] = keyResult{Key: k, AckedNodes: []string{}, AckedZones: []string{}}
			results[i].setLatency(time.Since(t0))
			if errs[i] != nil {
				break
			}
		}
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxParallelAwaits)
		for i, k := range call.Keys {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				results[i], errs[i] = s.await(ctx, call, k)
			})
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			s.writePublishError(w, r, call, call.Keys[i], err)
			return
		}
	}
	resp := publishResponse{Mode: cmp.Or(call.Mode, "none"), Required: call.Required, ZoneQuorum: call.ZoneQuorum, Results: results}
	el := time.Since(start)
	resp.Latency, resp.LatencyMS = el.String(), ms(el)
	writeJSON(w, http.StatusOK, resp)
}

func (kr *keyResult) setLatency(d time.Duration) { kr.Latency, kr.LatencyMS = d.String(), ms(d) }

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// await runs one awaiting publish of key.
func (s *apiServer) await(ctx context.Context, call input.Publish, key string) (keyResult, error) {
	var rep syncbus.AckReport
	opts := []syncbus.PublishOption{syncbus.WithScope(call.Scope), syncbus.WithAckReport(&rep)}
	t0 := time.Now()
	var err error
	if call.Mode == "replicas" {
		err = s.cfg.Bus.PublishAndAwait(ctx, key, call.Required, opts...)
	} else {
		if call.ZoneQuorum > 0 {
			opts = append(opts, syncbus.WithZoneQuorum(call.ZoneQuorum))
		}
		err = s.cfg.Bus.PublishAndAwaitTopology(ctx, key, call.Required, opts...)
	}
	res := keyResult{Key: key, AckedNodes: nonNil(rep.Nodes), AckedZones: nonNil(rep.Zones)}
	res.setLatency(time.Since(t0))
	return res, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writePublishError answers a failed publish: the quorum's figures for an
// unsatisfied acknowledgement (503 when the alive members cannot satisfy
// it, 504 when the deadline passed), 400 for a key the bus refuses, 503
// when the bus is closed or pushing back.
func (s *apiServer) writePublishError(w http.ResponseWriter, r *http.Request, call input.Publish, key string, err error) {
	if r.Context().Err() != nil {
		// The client left: nobody reads the answer.
		s.cfg.Logger.Debug("publish abandoned by its client", "key", key, "err", err)
		return
	}
	var qe *syncbus.QuorumError
	switch {
	case errors.As(err, &qe):
		f := quorumFailure{
			Error: err.Error(), Code: "quorum_not_satisfied", Key: key, Mode: call.Mode,
			Required: qe.Required, ZoneQuorum: qe.ZoneQuorum, Available: qe.Available, FailFast: qe.FailFast,
			AckedNodes: nonNil(qe.AckedNodes), AckedZones: nonNil(qe.AckedZones),
		}
		if call.Mode == "zones" {
			f.MissingZones = s.missingZones(qe)
		}
		status := http.StatusServiceUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			status, f.Code = http.StatusGatewayTimeout, "deadline_exceeded"
		}
		writeJSON(w, status, f)
	case errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusGatewayTimeout, input.APIError{Error: err.Error(), Code: "deadline_exceeded"})
	case errors.Is(err, syncbus.ErrInvalidKey), errors.Is(err, wire.ErrTooLarge):
		field := "key"
		if i := slices.Index(call.Keys, key); i >= 0 && len(call.Keys) > 1 {
			field = fmt.Sprintf("keys[%d]", i)
		}
		writeAPIError(w, input.BadField(field, "%v", err))
	case errors.Is(err, syncbus.ErrBackpressure):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, input.APIError{Error: err.Error(), Code: "backpressure"})
	case errors.Is(err, syncbus.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, input.APIError{Error: err.Error(), Code: "closed"})
	default:
		s.cfg.Logger.Error("publish failed", "key", key, "err", err)
		writeJSON(w, http.StatusInternalServerError, input.APIError{Error: err.Error(), Code: "internal"})
	}
}

// missingZones returns the zones this node knows of that did not apply
// the event: for a call that failed fast (and sent nothing), the zones
// without an alive member; otherwise every known zone that did not ack.
func (s *apiServer) missingZones(qe *syncbus.QuorumError) []string {
	alive := map[string]bool{}
	var out []string
	members := s.cfg.Bus.Members()
	for _, m := range members {
		if m.State.Alive() {
			alive[m.Zone] = true
		}
	}
	for _, m := range members {
		missing := !slices.Contains(qe.AckedZones, m.Zone)
		if qe.FailFast {
			missing = !alive[m.Zone]
		}
		if missing && !slices.Contains(out, m.Zone) {
			out = append(out, m.Zone)
		}
	}
	slices.Sort(out)
	return out
}

func (s *apiServer) revoke(w http.ResponseWriter, r *http.Request) {
	data, e := input.ReadBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	lease, e := input.DecodeRevoke(data)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	t0 := time.Now()
	if err := s.cfg.Bus.RevokeLease(r.Context(), lease); err != nil {
		s.writePublishError(w, r, input.Publish{Keys: []string{lease}}, lease, err)
		return
	}
	el := time.Since(t0)
	writeJSON(w, http.StatusOK, map[string]any{"lease": lease, "latency": el.String(), "latency_ms": ms(el)})
}

// memberJSON is one member as /v1/members lists it.
type memberJSON struct {
	Name   string `json:"name"`
	Zone   string `json:"zone"`
	Region string `json:"region"`
	Addr   string `json:"addr"`
	State  string `json:"state"` // alive, suspect, left or failed
}

// membersResponse is the answer of GET /v1/members.
type membersResponse struct {
	Self    string       `json:"self"`
	Members []memberJSON `json:"members"`
}

func stateName(s syncbus.MemberState) string {
	switch s {
	case syncbus.MemberAlive:
		return "alive"
	case syncbus.MemberSuspect:
		return "suspect"
	case syncbus.MemberLeft:
		return "left"
	case syncbus.MemberFailed:
		return "failed"
	}
	return strings.ToLower(s.String())
}

func (s *apiServer) members(w http.ResponseWriter, _ *http.Request) {
	ms := s.cfg.Bus.Members()
	resp := membersResponse{Self: s.cfg.Bus.Name(), Members: make([]memberJSON, 0, len(ms))}
	for _, m := range ms {
		resp.Members = append(resp.Members, memberJSON{Name: m.Name, Zone: m.Zone, Region: m.Region, Addr: m.Addr, State: stateName(m.State)})
	}
	slices.SortFunc(resp.Members, func(a, b memberJSON) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Name, b.Name))
	})
	writeJSON(w, http.StatusOK, resp)
}

func (s *apiServer) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "name": s.cfg.Bus.Name()})
}

// readiness is the answer of GET /readyz.
type readiness struct {
	Ready    bool `json:"ready"`
	Alive    int  `json:"alive"`
	Expected int  `json:"expected"`
	Zones    int  `json:"zones"`
}

func (s *apiServer) readiness() readiness {
	rd := readiness{Expected: s.cfg.ExpectMembers}
	zones := map[string]bool{}
	for _, m := range s.cfg.Bus.Members() {
		if m.State.Alive() {
			rd.Alive++
			zones[m.Zone] = true
		}
	}
	rd.Zones = len(zones)
	rd.Ready = rd.Alive >= rd.Expected
	return rd
}

func (s *apiServer) readyz(w http.ResponseWriter, _ *http.Request) {
	rd := s.readiness()
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}

// eventJSON is one event of a watch stream.
type eventJSON struct {
	ID          string            `json:"id"`
	Op          string            `json:"op"` // invalidate, lease_revoke or resync
	Key         string            `json:"key"`
	Origin      string            `json:"origin,omitempty"`
	Zone        string            `json:"zone,omitempty"`
	Region      string            `json:"region,omitempty"`
	Scope       string            `json:"scope"`
	Time        string            `json:"time,omitempty"` // RFC 3339, by the origin's clock
	VectorClock map[string]uint64 `json:"vector_clock,omitempty"`
}

func opName(op syncbus.Op) string {
	switch op {
	case syncbus.OpInvalidate:
		return "invalidate"
	case syncbus.OpLeaseRevoke:
		return "lease_revoke"
	case syncbus.OpResync:
		return "resync"
	}
	return strings.ToLower(op.String())
}

func toEventJSON(ev syncbus.Event) eventJSON {
	out := eventJSON{
		ID: ev.ID.String(), Op: opName(ev.Op), Key: ev.Key,
		Origin: ev.Origin, Zone: ev.Zone, Region: ev.Region,
		Scope: "local", VectorClock: ev.VectorClock,
	}
	if ev.Scope == syncbus.ScopeGlobal {
		out.Scope = "global"
	}
	if !ev.Time.IsZero() {
		out.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	return out
}

func (s *apiServer) watch(w http.ResponseWriter, r *http.Request) {
	kind, target, e := input.WatchTarget(r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	// The subscription lives as long as the request: the client leaving,
	// or the server shutting down, cancels ctx and closes it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var (
		ch  <-chan syncbus.Event
		err error
	)
	switch kind {
	case input.WatchKey:
		ch, err = s.cfg.Bus.Subscribe(ctx, target)
	case input.WatchLease:
		ch, err = s.cfg.Bus.SubscribeLease(ctx, target)
	default:
		ch, err = s.cfg.Bus.SubscribePrefix(ctx, target)
	}
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, syncbus.ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, input.APIError{Error: err.Error(), Code: "subscribe_failed"})
		return
	}
	s.watches[kind].Add(1)
	defer s.watches[kind].Add(-1)

	ndjson := input.WantsNDJSON(r)
	h := w.Header()
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// send writes and flushes one chunk within the write timeout; false
	// means the client is gone or stuck, and the stream ends.
	send := func(chunk []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) // unsupported by some writers: fine
		if _, err := w.Write(chunk); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !ndjson && !send([]byte(": watching "+watchKindNames[kind]+" "+input.Printable(target)+"\n\n")) {
		return
	} else if ndjson && rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return // the bus closed
			}
			body, err := json.Marshal(toEventJSON(ev))
			if err != nil {
				s.cfg.Logger.Error("watch: cannot encode an event", "err", err)
				continue
			}
			buf = buf[:0]
			if ndjson {
				buf = append(append(buf, body...), '\n')
			} else {
				buf = fmt.Appendf(buf, "event: %s\ndata: %s\n\n", opName(ev.Op), body)
			}
			if !send(buf) {
				return
			}
		case <-keepAlive.C:
			if !ndjson && !send([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}
