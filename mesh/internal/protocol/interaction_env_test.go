package protocol

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// env drives several Cores over a scripted network, in the manner of
// etcd's raft interaction tests: a script publishes, delivers, drops,
// duplicates and reorders frames, moves the one clock forward, changes
// what each node knows of the others, and prints every frame, delivery,
// resync and outcome, so that a protocol behaviour reads as a transcript.
//
// Frames travel encoded (the wire codec is part of what is tested) and in
// order per sender, receiver pair, unless a script says otherwise.
type env struct {
	t     testing.TB
	now   time.Time
	nodes []*envNode
	byNm  map[string]*envNode
	net   []*envMsg // in flight, in the order sent
	ids   uint64
	opts  envOptions
	out   *strings.Builder
	// quiet commands print counts instead of every frame and delivery.
	quiet   bool
	summary map[string]int
	// lossRate of the frames delivered are lost, drawn from lossRNG.
	lossRate float64
	lossRNG  *rand.Rand
	// introduce answers a core's strangers as a driver and its membership
	// do: a state exchange with the stranger, after which the core lists
	// it.
	introduce bool
}

type envOptions struct {
	fanout  Fanout
	window  int
	initial int
	scale   float64
	stall   time.Duration
	timings Timings
}

type envNode struct {
	name, zone  string
	addr        netip.AddrPort
	incarnation int
	core        *Core
	dead        bool // sends and receives nothing
	// The subscriptions, modelled as one bounded prefix subscription:
	// capacity (0: unbounded) and what waits unread in it; a reader that
	// keeps up empties it after every step.
	capacity, queued int
	overflowed       bool
	reader           bool
	// view is what this node's membership says of the others.
	view map[string]syncbus.MemberState
	// staleBoot holds, for a node restarted "quiet", the incarnation this
	// node's membership still lists until a members command names it.
	staleBoot map[string]uint64
	// awaits maps script IDs of this node's awaits to the core's.
	awaits map[string]uint64
	// started is when this incarnation started.
	started time.Time
}

type envMsg struct {
	from, to *envNode
	typ      wire.FrameType
	body     []byte
}

var envEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newEnv(t testing.TB) *env {
	return &env{t: t, now: envEpoch, byNm: map[string]*envNode{}, out: &strings.Builder{}}
}

func (e *env) boot(n *envNode) uint64 {
	return uint64(n.incarnation)*1000 + uint64(slices.Index(e.nodes, n)+1)
}

// label names a node's incarnation: n3, then n3@2 after a restart.
func (e *env) label(name string, boot uint64) string {
	if inc := boot / 1000; inc > 1 {
		return fmt.Sprintf("%s@%d", name, inc)
	}
	return name
}

func (e *env) node(name string) *envNode {
	n := e.byNm[name]
	if n == nil {
		e.t.Fatalf("no node %q", name)
	}
	return n
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.out, format+"\n", args...) }

// count tallies what a quiet command would have printed line by line.
func (e *env) count(what string, n int) { e.summary[what] += n }

func (e *env) printSummary() {
	if len(e.summary) == 0 {
		return
	}
	var lines []string
	for k, v := range e.summary {
		lines = append(lines, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(lines)
	for _, l := range lines {
		e.printf("%s", l)
	}
}

// handle runs one script command and returns what it printed.
func (e *env) handle(t *testing.T, d *datadriven.TestData) string {
	e.t = t
	e.out.Reset()
	e.quiet, e.summary = d.HasArg("quiet"), map[string]int{}
	switch d.Cmd {
	case "add-nodes":
		e.addNodes(t, d)
	case "publish":
		e.publish(t, d)
	case "await":
		e.await(t, d)
	case "cancel":
		n := e.node(d.CmdArgs[0].Key)
		var id string
		d.ScanArgs(t, "id", &id)
		n.core.Cancel(e.now, n.awaits[id], errors.New("cancelled"))
		e.drain(n)
	case "deliver":
		e.deliver(t, d)
	case "stabilize":
		e.stabilize(t, d)
	case "tick":
		e.tick(t, d)
	case "run":
		e.run(t, d)
	case "members":
		e.members(t, d)
	case "kill":
		for _, a := range d.CmdArgs {
			e.node(a.Key).dead = true
		}
	case "restart":
		e.restart(t, d)
	case "room":
		n := e.node(d.CmdArgs[0].Key)
		d.ScanArgs(t, "capacity", &n.capacity)
		n.reader = d.HasArg("reader")
	case "consume":
		n := e.node(d.CmdArgs[0].Key)
		k := n.queued
		d.MaybeScanArgs(t, "n", &k)
		n.queued -= min(k, n.queued)
		if n.queued == 0 {
			n.overflowed = false
		}
		e.printf("%s: %d unread", n.name, n.queued)
	case "loss":
		var seed uint64
		d.ScanArgs(t, "rate", &e.lossRate)
		d.ScanArgs(t, "seed", &seed)
		e.lossRNG = rand.New(rand.NewPCG(seed, seed))
	case "introduce-strangers":
		e.introduce = true
	case "mute":
		n := e.node(d.CmdArgs[0].Key)
		n.core.SetMuted(true)
	case "state":
		for _, a := range d.CmdArgs {
			e.state(e.node(a.Key))
		}
	case "stats":
		for _, a := range d.CmdArgs {
			n := e.node(a.Key)
			s := n.core.Stats()
			e.printf("%s: retransmits=%d repair-requests=%d duplicates=%d acks-sent=%d acks-received=%d stale-acks=%d resyncs=%d relayed=%d stalls=%d released=%d credits=%d drops=%v",
				n.name, s.Retransmits, s.RepairRequests, s.Duplicates, s.AcksSent, s.AcksReceived, s.StaleAcks, s.Resyncs, s.Relayed,
				s.FlowStalls, s.FlowReleased, s.CreditsSent, s.Drops)
		}
	case "inflight":
		for _, m := range e.net {
			e.printf("%s", e.describe(m))
		}
	default:
		t.Fatalf("unknown command %q", d.Cmd)
	}
	e.printSummary()
	if e.out.Len() == 0 {
		return "ok\n"
	}
	return e.out.String()
}

// addNodes starts nodes, one per input line "name zone"; every node knows
// every other as alive. Options: fanout=direct|relay|auto, window=N,
// stall=D, and any timing as nak-delay=D etc.
func (e *env) addNodes(t *testing.T, d *datadriven.TestData) {
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "fanout":
			switch a.Vals[0] {
			case "direct":
				e.opts.fanout = FanoutDirect
			case "relay":
				e.opts.fanout = FanoutRelay
			default:
				e.opts.fanout = FanoutAuto
			}
		case "window":
			e.opts.window, _ = strconv.Atoi(a.Vals[0])
		case "stall":
			e.opts.stall = mustDuration(t, a.Vals[0])
		case "time-scale":
			e.opts.scale, _ = strconv.ParseFloat(a.Vals[0], 64)
		case "initial-credit":
			e.opts.initial, _ = strconv.Atoi(a.Vals[0])
		case "relay-hold":
			e.opts.timings.RelayHold = mustDuration(t, a.Vals[0])
		}
	}
	var added []*envNode
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("want \"name zone\", got %q", line)
		}
		n := &envNode{name: f[0], zone: f[1], incarnation: 1, view: map[string]syncbus.MemberState{}, awaits: map[string]uint64{}, started: e.now}
		e.nodes = append(e.nodes, n)
		e.byNm[n.name] = n
		n.addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(len(e.zones())), byte(len(e.nodes))}), 7946)
		n.core = e.newCore(t, n)
		added = append(added, n)
	}
	for _, n := range e.nodes {
		for _, m := range e.nodes {
			if m != n {
				if _, ok := n.view[m.name]; !ok {
					n.view[m.name] = syncbus.MemberAlive
				}
			}
		}
	}
	for _, n := range e.nodes {
		e.setMembers(n)
	}
}

func (e *env) zones() map[string]bool {
	z := map[string]bool{}
	for _, n := range e.nodes {
		z[n.zone] = true
	}
	return z
}

func (e *env) newCore(t testing.TB, n *envNode) *Core {
	tm := e.opts.timings
	tm.StallTimeout = e.opts.stall
	c, err := New(Config{Name: n.name, Zone: n.zone, Boot: e.boot(n), Fanout: e.opts.fanout, Window: e.opts.window, InitialCredit: e.opts.initial, TimeScale: e.opts.scale, Timings: tm})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setMembers gives a node's core its view.
func (e *env) setMembers(n *envNode) {
	var ms []Member
	for _, m := range e.nodes {
		st, ok := n.view[m.name]
		if m == n || !ok {
			continue
		}
		boot := e.boot(m)
		if old, ok := n.staleBoot[m.name]; ok {
			boot = old
		}
		ms = append(ms, Member{Name: m.name, Zone: m.zone, Addr: m.addr, Boot: boot, State: st, Started: m.started})
	}
	if err := n.core.SetMembers(e.now, ms); err != nil {
		e.t.Fatal(err)
	}
	e.drain(n)
}

// members changes what nodes know: "members n1 n3=failed" for n1,
// "members all n3=suspect" for every node but n3; "n3=forget" removes it.
func (e *env) members(t *testing.T, d *datadriven.TestData) {
	var who []*envNode
	if d.CmdArgs[0].Key == "all" {
		who = e.nodes
	} else {
		who = []*envNode{e.node(d.CmdArgs[0].Key)}
	}
	for _, n := range who {
		for _, a := range d.CmdArgs[1:] {
			if a.Key == n.name {
				continue
			}
			delete(n.staleBoot, a.Key) // named: the membership knows its incarnation now
			switch a.Vals[0] {
			case "alive":
				n.view[a.Key] = syncbus.MemberAlive
			case "suspect":
				n.view[a.Key] = syncbus.MemberSuspect
			case "failed":
				n.view[a.Key] = syncbus.MemberFailed
			case "left":
				n.view[a.Key] = syncbus.MemberLeft
			case "forget":
				delete(n.view, a.Key)
			default:
				t.Fatalf("unknown state %q", a.Vals[0])
			}
		}
		e.setMembers(n)
	}
}

// restart gives a node a new incarnation under the same name (a fresh
// core, nothing in its subscriptions); every other node learns of it.
func (e *env) restart(t *testing.T, d *datadriven.TestData) {
	n := e.node(d.CmdArgs[0].Key)
	if d.HasArg("quiet") {
		for _, m := range e.nodes {
			if _, stale := m.staleBoot[n.name]; m != n && !stale {
				if m.staleBoot == nil {
					m.staleBoot = map[string]uint64{}
				}
				m.staleBoot[n.name] = e.boot(n)
			}
		}
	}
	n.incarnation++
	n.started = e.now
	n.dead, n.queued, n.overflowed = false, 0, false
	n.awaits = map[string]uint64{}
	n.core = e.newCore(t, n)
	for _, m := range e.nodes {
		if m != n {
			n.view[m.name] = syncbus.MemberAlive
		}
	}
	e.setMembers(n)
	if !d.HasArg("quiet") {
		for _, m := range e.nodes {
			if m != n {
				m.view[n.name] = syncbus.MemberAlive
				e.setMembers(m)
			}
		}
	}
}

func (e *env) newEvent(key string) wire.Event {
	e.ids++
	var id syncbus.EventID
	copy(id[:], fmt.Sprintf("%016d", e.ids))
	return wire.Event{ID: id, Key: key, Time: e.now.UnixNano()}
}

// publish: "publish n1 k1 k2 ...".
func (e *env) publish(t *testing.T, d *datadriven.TestData) {
	n := e.node(d.CmdArgs[0].Key)
	var evs []wire.Event
	for _, a := range d.CmdArgs[1:] {
		if a.Key == "quiet" {
			continue
		}
		if strings.Contains(a.Key, "..") { // k1..k100
			prefix, from, to := parseRange(t, a.Key)
			for i := from; i <= to; i++ {
				evs = append(evs, e.newEvent(prefix+strconv.Itoa(i)))
			}
			continue
		}
		evs = append(evs, e.newEvent(a.Key))
	}
	n.core.Publish(e.now, evs...)
	e.drain(n)
	if p := n.core.Pending(); p > 0 {
		e.printf("%s: %d pending", n.name, p)
	}
}

func parseRange(t testing.TB, s string) (string, int, int) {
	lo, hi, _ := strings.Cut(s, "..")
	i := strings.IndexFunc(lo, func(r rune) bool { return r >= '0' && r <= '9' })
	if i < 0 {
		t.Fatalf("bad range %q", s)
	}
	from, err1 := strconv.Atoi(lo[i:])
	to, err2 := strconv.Atoi(strings.TrimPrefix(hi, lo[:i]))
	if err1 != nil || err2 != nil {
		t.Fatalf("bad range %q", s)
	}
	return lo[:i], from, to
}

// await: "await n1 id=a key=k replicas=2" or "zones=2 [quorum=2]",
// "deadline=100ms", "report".
func (e *env) await(t *testing.T, d *datadriven.TestData) {
	n := e.node(d.CmdArgs[0].Key)
	var id, key string
	d.ScanArgs(t, "id", &id)
	d.ScanArgs(t, "key", &key)
	var req zones.Requirement
	var count, quorum int
	if d.MaybeScanArgs(t, "zones", &count) {
		d.MaybeScanArgs(t, "quorum", &quorum)
		req = zones.Zones(count).WithZoneQuorum(quorum)
	} else {
		d.ScanArgs(t, "replicas", &count)
		req = zones.Replicas(count)
	}
	var deadline time.Time
	var dl string
	if d.MaybeScanArgs(t, "deadline", &dl) {
		deadline = e.now.Add(mustDuration(t, dl))
	}
	ev := e.newEvent(key)
	e.ids++
	n.awaits[id] = e.ids
	n.core.Await(e.now, e.ids, ev, req, deadline, d.HasArg("report"))
	e.drain(n)
}

// deliver hands in-flight frames to their receivers, in order: all of
// them, or those matching from=, to=, type= (Events, Acks, Nak,
// Unavailable, Digest, Credit); "drop" loses them instead, "dup" delivers
// them twice, "reverse" in reverse order, "count=N" only the first N.
// Frames the deliveries produce stay in flight.
func (e *env) deliver(t *testing.T, d *datadriven.TestData) {
	var from, to, typ string
	d.MaybeScanArgs(t, "from", &from)
	d.MaybeScanArgs(t, "to", &to)
	d.MaybeScanArgs(t, "type", &typ)
	count := math.MaxInt
	d.MaybeScanArgs(t, "count", &count)
	var picked, kept []*envMsg
	for _, m := range e.net {
		if len(picked) < count && (from == "" || m.from.name == from) && (to == "" || m.to.name == to) &&
			(typ == "" || typeName(m.typ) == typ) {
			picked = append(picked, m)
		} else {
			kept = append(kept, m)
		}
	}
	e.net = kept
	if d.HasArg("reverse") {
		slices.Reverse(picked)
	}
	for _, m := range picked {
		if d.HasArg("drop") {
			if e.quiet {
				e.count(fmt.Sprintf("dropped %s->%s %s", m.from.name, m.to.name, typeName(m.typ)), 1)
			} else {
				e.printf("dropped %s", e.describe(m))
			}
			continue
		}
		e.receive(m)
		if d.HasArg("dup") {
			e.receive(m)
		}
	}
}

// stabilize delivers until nothing is in flight (timers do not run).
func (e *env) stabilize(t *testing.T, d *datadriven.TestData) {
	for rounds := 0; len(e.net) > 0; rounds++ {
		if rounds > 1000 {
			t.Fatal("not stable after 1000 rounds")
		}
		msgs := e.net
		e.net = nil
		for _, m := range msgs {
			e.receive(m)
		}
	}
}

// receive steps the receiver with one frame.
func (e *env) receive(m *envMsg) {
	if m.to.dead {
		if e.quiet {
			e.count(fmt.Sprintf("lost %s->%s %s", m.from.name, m.to.name, typeName(m.typ)), 1)
		} else {
			e.printf("lost %s (%s is down)", e.describe(m), m.to.name)
		}
		return
	}
	if e.lossRate > 0 && e.lossRNG.Float64() < e.lossRate {
		if e.quiet {
			e.count("lost at random", 1)
		} else {
			e.printf("lost at random %s", e.describe(m))
		}
		return
	}
	if !e.quiet {
		e.printf("%s", e.describe(m))
	}
	n := m.to
	n.core.SetRoom(n.room())
	if _, err := n.core.Step(e.now, m.from.addr, m.body); err != nil {
		e.printf("  %s refused: %v", n.name, err)
	}
	e.drain(n)
}

func (n *envNode) room() int {
	if n.capacity == 0 {
		return math.MaxInt32
	}
	return max(n.capacity-n.queued, 0)
}

// tick moves the clock forward by a duration ("tick 20ms"), running every
// node's timers at the times they are due, in order; frames stay in
// flight.
func (e *env) tick(t *testing.T, d *datadriven.TestData) {
	e.advance(t, d, false)
}

// run lets the network work for a while ("run 1s"): every frame is
// delivered as soon as it is sent and every timer runs when due.
func (e *env) run(t *testing.T, d *datadriven.TestData) {
	e.advance(t, d, true)
}

func (e *env) advance(t *testing.T, d *datadriven.TestData, deliver bool) {
	target := e.now.Add(mustDuration(t, d.CmdArgs[0].Key))
	for step := 0; ; step++ {
		if step > 1_000_000 {
			t.Fatal("the network does not settle")
		}
		if deliver {
			e.stabilize(t, d)
		}
		next := e.nextDue(target)
		if next == nil {
			break
		}
		if at := next.core.NextTick(); at.After(e.now) {
			e.now = at
		}
		next.core.SetRoom(next.room())
		next.core.Tick(e.now)
		e.drain(next)
	}
	e.now = target
}

// nextDue returns the live node whose timer is due first, no later than
// target.
func (e *env) nextDue(target time.Time) *envNode {
	var next *envNode
	for _, n := range e.nodes {
		nt := n.core.NextTick()
		if n.dead || nt.IsZero() || nt.After(target) {
			continue
		}
		if next == nil || nt.Before(next.core.NextTick()) {
			next = n
		}
	}
	return next
}

// drain acts on a core's Ready as a driver does: deliveries, resyncs, then
// frames (encoded, in flight), outcomes.
func (e *env) drain(n *envNode) {
	rd := n.core.Ready()
	if rd.Empty() {
		return
	}
	at := fmt.Sprintf("[%v]", e.now.Sub(envEpoch))
	for _, ev := range rd.Deliveries {
		if n.capacity > 0 && n.queued >= n.capacity {
			if !n.overflowed {
				e.printf("  %s %s OVERFLOW at %s from %s (a resync for its subscriber)", at, n.name, ev.Key, ev.Origin)
			}
			n.overflowed = true
			continue
		}
		n.queued++
		if e.quiet {
			e.count(fmt.Sprintf("%s got events from %s", n.name, ev.Origin), 1)
			continue
		}
		e.printf("  %s %s got %s from %s", at, n.name, ev.Key, ev.Origin)
	}
	for _, o := range rd.Resyncs {
		e.printf("  %s %s RESYNC origin=%s", at, n.name, o)
	}
	var sent []string
	for i := range rd.Messages {
		m := &rd.Messages[i]
		for _, body := range e.encode(m) {
			for _, to := range m.To {
				dst := e.byAddr(to)
				if dst == nil {
					e.t.Fatalf("%s sends to unknown %v", n.name, to)
				}
				msg := &envMsg{from: n, to: dst, typ: m.Type, body: body}
				if n.dead {
					continue
				}
				e.net = append(e.net, msg)
				if e.quiet {
					e.count(fmt.Sprintf("sent %s->%s %s", n.name, dst.name, typeName(m.Type)), 1)
					continue
				}
				sent = append(sent, "  "+at+" sent "+e.describe(msg))
			}
		}
	}
	sort.Strings(sent)
	for _, s := range sent {
		e.printf("%s", s)
	}
	outs := slices.Clone(rd.Outcomes)
	slices.SortFunc(outs, func(a, b Outcome) int { return int(a.ID) - int(b.ID) })
	for _, o := range outs {
		id := ""
		for k, v := range n.awaits {
			if v == o.ID {
				id = k
			}
		}
		switch {
		case o.Err == nil && len(o.Report.Nodes)+len(o.Report.Zones) > 0:
			e.printf("  %s %s await %s: ok nodes=%v zones=%v after %v", at, n.name, id, o.Report.Nodes, o.Report.Zones, o.Latency)
		case o.Err == nil:
			e.printf("  %s %s await %s: ok after %v", at, n.name, id, o.Latency)
		default:
			var qe *syncbus.QuorumError
			ok := errors.As(o.Err, &qe) && errors.Is(o.Err, syncbus.ErrQuorumNotSatisfied)
			e.printf("  %s %s await %s: FAILED fail-fast=%v typed=%v: %v", at, n.name, id, o.FailFast, ok, o.Err)
		}
	}
	for _, s := range rd.FlowStalls {
		if !e.quiet {
			e.printf("  %s %s stalled for %v", at, n.name, s)
		} else if s > 100*time.Millisecond {
			e.printf("  %s %s stalled for %v", at, n.name, s)
		}
	}
	var met []*envNode
	for _, a := range rd.Strangers {
		m := e.byAddr(a)
		if m == nil {
			e.t.Fatalf("%s reports an unknown stranger %v", n.name, a)
		}
		e.printf("  %s %s heard from stranger %s", at, n.name, m.name)
		met = append(met, m)
	}
	n.core.Advance()
	if n.reader {
		n.queued = 0
	}
	if e.introduce && len(met) > 0 {
		for _, m := range met {
			n.view[m.name] = syncbus.MemberAlive
		}
		e.setMembers(n)
	}
}

func (e *env) byAddr(a netip.AddrPort) *envNode {
	for _, n := range e.nodes {
		if n.addr == a {
			return n
		}
	}
	return nil
}

// encode turns a message into datagram bodies, as the driver does.
func (e *env) encode(m *Message) [][]byte {
	var body []byte
	var err error
	switch m.Type {
	case wire.FrameEvents:
		bodies, err := wire.Split(&m.Events, wire.DefaultDatagramBudget)
		if err != nil {
			e.t.Fatal(err)
		}
		return bodies
	case wire.FrameAcks:
		body, err = wire.AppendAcks(nil, &m.Acks, false)
	case wire.FrameRepairRequest:
		body, err = wire.AppendRepairRequest(nil, &m.Repairs, false)
	case wire.FrameUnavailable:
		body, err = wire.AppendUnavailable(nil, &m.Unavailable, false)
	case wire.FrameDigest:
		body, err = wire.AppendDigest(nil, &m.Digest, false)
	case wire.FrameCredit:
		body, err = wire.AppendCredit(nil, &m.Credit, false)
	default:
		e.t.Fatalf("unknown message type %v", m.Type)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return [][]byte{body}
}

func typeName(t wire.FrameType) string {
	switch t {
	case wire.FrameRepairRequest:
		return "Nak"
	default:
		return strings.TrimPrefix(t.String(), "Frame")
	}
}

// describe prints a frame in flight, decoded.
func (e *env) describe(m *envMsg) string {
	head := fmt.Sprintf("%s->%s %s", m.from.name, m.to.name, typeName(m.typ))
	switch m.typ {
	case wire.FrameEvents:
		var f wire.Events
		if err := wire.DecodeEvents(m.body, &f); err != nil {
			return head + " undecodable: " + err.Error()
		}
		var keys []string
		for _, ev := range f.Events {
			k := fmt.Sprintf("%s#%d", ev.Key, ev.Seq)
			if ev.Flags&wire.EventAckWanted != 0 {
				k += "!"
			}
			keys = append(keys, k)
		}
		flags := ""
		if f.Flags&wire.FlagRelay != 0 {
			flags += " relay"
		}
		if f.Flags&wire.FlagRetransmit != 0 {
			flags += " retransmit"
		}
		if len(keys) > 8 {
			keys = append(keys[:3], fmt.Sprintf("… (%d events) …", len(keys)), keys[len(keys)-1])
		}
		return fmt.Sprintf("%s %s: %s%s", head, e.label(f.Origin, f.Boot), strings.Join(keys, " "), flags)
	case wire.FrameAcks:
		var f wire.Acks
		if err := wire.DecodeAcks(m.body, &f); err != nil {
			return head + " undecodable: " + err.Error()
		}
		var acks []string
		for _, a := range f.Acks {
			acks = append(acks, fmt.Sprintf("%s%v", e.label(a.Node, a.Boot), a.Seqs))
		}
		return fmt.Sprintf("%s of %s: %s", head, e.label(f.Origin, f.Boot), strings.Join(acks, " "))
	case wire.FrameRepairRequest:
		var f wire.RepairRequest
		_ = wire.DecodeRepairRequest(m.body, &f)
		return fmt.Sprintf("%s %s: %s", head, e.label(f.Origin, f.Boot), ranges(f.Ranges))
	case wire.FrameUnavailable:
		var f wire.Unavailable
		_ = wire.DecodeUnavailable(m.body, &f)
		return fmt.Sprintf("%s %s: %s", head, e.label(f.Origin, f.Boot), ranges(f.Ranges))
	case wire.FrameDigest:
		var f wire.Digest
		_ = wire.DecodeDigest(m.body, &f)
		s := fmt.Sprintf("%s %s: seq=%d start=%d", head, e.label(f.Origin, f.Boot), f.Seq, f.Start)
		if f.Blocked {
			s += " blocked"
		}
		if f.Relay {
			s += " relay"
		}
		return s
	case wire.FrameCredit:
		var f wire.Credit
		_ = wire.DecodeCredit(m.body, &f)
		return fmt.Sprintf("%s to %s: limit=%d", head, e.label(f.Origin, f.Boot), f.Limit)
	}
	return head
}

func ranges(rs []wire.SeqRange) string {
	var s []string
	for _, r := range rs {
		if r.From == r.To {
			s = append(s, strconv.FormatUint(r.From, 10))
		} else {
			s = append(s, fmt.Sprintf("%d-%d", r.From, r.To))
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// state prints what a core holds: its numbering, receive windows, awaits
// and flow control.
func (e *env) state(n *envNode) {
	c := n.core
	e.printf("%s: seq=%d pending=%d mode=%v next-tick=%v", n.name, c.seq, c.Pending(), c.view.mode, tickIn(c.NextTick(), e.now))
	var keys []originKey
	for k := range c.windows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b originKey) int { return strings.Compare(a.name, b.name) })
	for _, k := range keys {
		w := c.windows[k]
		e.printf("  window %s: next=%d highest=%d base=%d gap=%v naks=%d granted=%d", e.label(k.name, k.boot), w.next, w.highest, w.base, w.hasGap(), w.naksSent, w.granted)
	}
	var ids []string
	for id := range n.awaits {
		if _, ok := c.awaits[n.awaits[id]]; ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := c.awaits[n.awaits[id]]
		e.printf("  await %s: seq=%d attempts=%d acked=%v", id, a.seq, a.attempts, a.tracker.AckedNodes())
	}
	var names []string
	for name := range c.flow.recv {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := c.flow.recv[name]
		e.printf("  credit %s: limit=%d released=%v", name, r.limit, r.released)
	}
}

func tickIn(t, now time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return "+" + t.Sub(now).String()
}

func mustDuration(t testing.TB, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("bad duration %q: %v", s, err)
	}
	return d
}
