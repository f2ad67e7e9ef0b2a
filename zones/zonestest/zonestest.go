package zonestest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

// ErrSpec is matched by every error Parse returns.
var ErrSpec = errors.New("zonestest: bad member spec")

// SpecError reports where a member spec is wrong. It matches ErrSpec with
// errors.Is.
type SpecError struct {
	// Group is the offending whitespace-separated group of the spec.
	Group string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the group and the reason.
func (e *SpecError) Error() string {
	return ErrSpec.Error() + ": " + strconv.Quote(e.Group) + ": " + e.Reason
}

// Is reports whether target is ErrSpec.
func (e *SpecError) Is(target error) bool { return target == ErrSpec }

// stateNames are the spec's state suffixes, indexed by syncbus.MemberState.
func stateNames() [4]string { return [4]string{"alive", "suspect", "left", "failed"} }

// parseState reads a state suffix.
func parseState(s string) (syncbus.MemberState, bool) {
	for i, name := range stateNames() {
		if name == s {
			return syncbus.MemberState(i), true
		}
	}
	return 0, false
}

// stateName writes a state suffix; a state outside the enum gets a name
// Parse refuses, so a corrupt member list cannot round-trip unnoticed.
func stateName(s syncbus.MemberState) string {
	if names := stateNames(); int(s) < len(names) {
		return names[s]
	}
	return "state" + strconv.Itoa(int(s))
}

// Parse turns a member spec into members, in the order the spec lists them.
//
// A spec is whitespace-separated groups "zone:node,node,...". The zone may
// be empty (":n1" puts n1 in the zone ""), and a zone may appear in several
// groups. A node is a name, optionally followed by "/suspect", "/left",
// "/failed" or "/alive" (the default). Names cannot contain ':', ',', '/' or
// whitespace, must not repeat, and must not be empty. Parse fills in Name,
// Zone and State; Region and Addr stay empty.
//
// For example "a:n1,n2/suspect b:n3/failed :n4" is two nodes in zone a (n2
// suspect), a failed node in zone b and an alive node in zone "".
func Parse(spec string) ([]syncbus.Member, error) {
	var out []syncbus.Member
	seen := make(map[string]bool)
	for _, group := range strings.Fields(spec) {
		zone, list, ok := strings.Cut(group, ":")
		if !ok {
			return nil, &SpecError{Group: group, Reason: `missing ":" after the zone`}
		}
		if strings.ContainsAny(zone, ",/") {
			return nil, &SpecError{Group: group, Reason: "zone name contains ',' or '/'"}
		}
		for _, item := range strings.Split(list, ",") {
			name, stateName, hasState := strings.Cut(item, "/")
			state := syncbus.MemberAlive
			if hasState {
				st, known := parseState(stateName)
				if !known {
					return nil, &SpecError{Group: group, Reason: "unknown state " + strconv.Quote(stateName)}
				}
				state = st
			}
			switch {
			case name == "":
				return nil, &SpecError{Group: group, Reason: "empty node name"}
			case strings.Contains(name, ":"):
				return nil, &SpecError{Group: group, Reason: "node name " + strconv.Quote(name) + ` contains ":"`}
			case seen[name]:
				return nil, &SpecError{Group: group, Reason: "node " + strconv.Quote(name) + " listed twice"}
			}
			seen[name] = true
			out = append(out, syncbus.Member{Name: name, Zone: zone, State: state})
		}
	}
	return out, nil
}

// Format renders members as a spec that Parse reads back: one group per
// zone, in the order zones first appear, nodes in their order, states other
// than alive as suffixes. Members whose names or zones contain the spec's
// separators do not survive the round trip. It is meant for test logs.
func Format(members []syncbus.Member) string {
	var zoneOrder []string
	byZone := make(map[string][]string)
	for _, m := range members {
		if _, ok := byZone[m.Zone]; !ok {
			zoneOrder = append(zoneOrder, m.Zone)
		}
		item := m.Name
		if m.State != syncbus.MemberAlive {
			item += "/" + stateName(m.State)
		}
		byZone[m.Zone] = append(byZone[m.Zone], item)
	}
	groups := make([]string, len(zoneOrder))
	for i, z := range zoneOrder {
		groups[i] = z + ":" + strings.Join(byZone[z], ",")
	}
	return strings.Join(groups, " ")
}

// Members is Parse for tests: it fails tb on a bad spec.
func Members(tb testing.TB, spec string) []syncbus.Member {
	tb.Helper()
	ms, err := Parse(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return ms
}

// Uniform returns n alive members spread round-robin over k zones named
// "z0", "z1", ...; nodes are named "n0", "n1", ... padded to equal width, so
// that name order is numeric order. n <= 0 gives none; k <= 0 means 1.
func Uniform(n, k int) []syncbus.Member {
	if n <= 0 {
		return nil
	}
	k = max(k, 1)
	width := len(strconv.Itoa(n - 1))
	out := make([]syncbus.Member, n)
	for i := range out {
		out[i] = syncbus.Member{
			Name:  fmt.Sprintf("n%0*d", width, i),
			Zone:  "z" + strconv.Itoa(i%k),
			State: syncbus.MemberAlive,
		}
	}
	return out
}

// WithState returns a copy of members where the named nodes have state st,
// failing tb when a name is not among them.
func WithState(tb testing.TB, members []syncbus.Member, st syncbus.MemberState, names ...string) []syncbus.Member {
	tb.Helper()
	out := make([]syncbus.Member, len(members))
	copy(out, members)
	for _, name := range names {
		found := false
		for i := range out {
			if out[i].Name == name {
				out[i].State = st
				found = true
			}
		}
		if !found {
			tb.Fatalf("zonestest.WithState: no member %q", name)
		}
	}
	return out
}
