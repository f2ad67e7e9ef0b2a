package zonestest_test

import (
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones/zonestest"
)

func TestParse(t *testing.T) {
	got, err := zonestest.Parse("a:n1,n2/suspect  b:n3/failed,n4/left\t:n5 a:n6/alive")
	if err != nil {
		t.Fatal(err)
	}
	want := []syncbus.Member{
		{Name: "n1", Zone: "a", State: syncbus.MemberAlive},
		{Name: "n2", Zone: "a", State: syncbus.MemberSuspect},
		{Name: "n3", Zone: "b", State: syncbus.MemberFailed},
		{Name: "n4", Zone: "b", State: syncbus.MemberLeft},
		{Name: "n5", Zone: "", State: syncbus.MemberAlive},
		{Name: "n6", Zone: "a", State: syncbus.MemberAlive},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
	if ms, err := zonestest.Parse("   "); err != nil || ms != nil {
		t.Errorf("Parse(blank) = %v, %v; want nil, nil", ms, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, spec := range []string{
		"n1,n2",          // no zone
		"a:",             // empty node
		"a:n1,,n2",       // empty node
		"a:n1,n2,",       // trailing comma
		"a:n1 b:n1",      // duplicate
		"a:n1/dead",      // unknown state
		"a:n1/",          // empty state
		"a:b:n1",         // colon in a name
		"a,b:n1",         // comma in a zone
		"a/b:n1",         // slash in a zone
		"a:/suspect",     // state without a name
		"a:n1/left/left", // two states
	} {
		ms, err := zonestest.Parse(spec)
		if !errors.Is(err, zonestest.ErrSpec) {
			t.Errorf("Parse(%q) = %v, %v; want ErrSpec", spec, ms, err)
			continue
		}
		var se *zonestest.SpecError
		if !errors.As(err, &se) || se.Group == "" || se.Reason == "" {
			t.Errorf("Parse(%q): error %v does not say where", spec, err)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zone := rapid.SampledFrom([]string{"", "a", "b", "eu-west-1a"})
		state := rapid.SampledFrom([]syncbus.MemberState{syncbus.MemberAlive, syncbus.MemberSuspect, syncbus.MemberLeft, syncbus.MemberFailed})
		names := rapid.SliceOfDistinct(rapid.StringMatching(`[a-z][a-z0-9.\-]{0,6}`), rapid.ID).Draw(t, "names")
		// Format groups by zone in order of first appearance; draw members
		// already in that shape so that the round trip is exact.
		var ms []syncbus.Member
		for _, n := range names {
			ms = append(ms, syncbus.Member{Name: n, Zone: zone.Draw(t, "zone"), State: state.Draw(t, "state")})
		}
		first := make(map[string]int)
		for i, m := range ms {
			if _, seen := first[m.Zone]; !seen {
				first[m.Zone] = i
			}
		}
		slices.SortStableFunc(ms, func(a, b syncbus.Member) int { return first[a.Zone] - first[b.Zone] })
		got, err := zonestest.Parse(zonestest.Format(ms))
		if err != nil {
			t.Fatalf("Parse(Format(%v)): %v", ms, err)
		}
		if !slices.Equal(got, ms) {
			t.Fatalf("Parse(Format(ms)) = %v, want %v (spec %q)", got, ms, zonestest.Format(ms))
		}
	})
}

func TestFormatMarksUnknownStates(t *testing.T) {
	spec := zonestest.Format([]syncbus.Member{{Name: "n1", Zone: "a", State: syncbus.MemberState(9)}})
	if _, err := zonestest.Parse(spec); !errors.Is(err, zonestest.ErrSpec) {
		t.Errorf("Format wrote %q for an undefined state, which Parse accepted", spec)
	}
}

func TestUniform(t *testing.T) {
	ms := zonestest.Uniform(12, 3)
	if len(ms) != 12 {
		t.Fatalf("Uniform(12, 3) has %d members", len(ms))
	}
	perZone := make(map[string]int)
	for i, m := range ms {
		perZone[m.Zone]++
		if m.State != syncbus.MemberAlive {
			t.Errorf("%s is %v, want alive", m.Name, m.State)
		}
		if i > 0 && ms[i-1].Name >= m.Name {
			t.Errorf("names not in order: %s then %s", ms[i-1].Name, m.Name)
		}
	}
	if perZone["z0"] != 4 || perZone["z1"] != 4 || perZone["z2"] != 4 {
		t.Errorf("zones %v, want 4 nodes in each of z0 z1 z2", perZone)
	}
	if ms[0].Name != "n00" || ms[11].Name != "n11" {
		t.Errorf("names %s..%s, want n00..n11", ms[0].Name, ms[11].Name)
	}
	if got := zonestest.Uniform(0, 3); got != nil {
		t.Errorf("Uniform(0, 3) = %v", got)
	}
	for _, m := range zonestest.Uniform(3, 0) {
		if m.Zone != "z0" {
			t.Errorf("Uniform(3, 0) put %s in %q, want z0", m.Name, m.Zone)
		}
	}
}

func TestWithState(t *testing.T) {
	ms := zonestest.Members(t, "a:n1,n2 b:n3")
	got := zonestest.WithState(t, ms, syncbus.MemberFailed, "n2", "n3")
	if got[1].State != syncbus.MemberFailed || got[2].State != syncbus.MemberFailed || got[0].State != syncbus.MemberAlive {
		t.Errorf("WithState = %+v", got)
	}
	if ms[1].State != syncbus.MemberAlive {
		t.Errorf("WithState changed its input")
	}
}

// fakeTB records a failure instead of stopping the test, so the helpers'
// failure paths can be checked.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatal(args ...any)     { f.failed = true; panic(f) }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; panic(f) }
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }

// failsTB runs fn with a fakeTB and reports whether fn failed it.
func failsTB(fn func(tb testing.TB)) (failed bool) {
	f := &fakeTB{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		failed = f.failed
	}()
	fn(f)
	return false
}

func TestHelpersFailTheTest(t *testing.T) {
	cases := map[string]func(tb testing.TB){
		"Members with a bad spec": func(tb testing.TB) { zonestest.Members(tb, "a:n1,,") },
		"Members without a zone":  func(tb testing.TB) { zonestest.Members(tb, "n1") },
		"WithState of a stranger": func(tb testing.TB) { zonestest.WithState(tb, nil, syncbus.MemberLeft, "n1") },
	}
	for name, fn := range cases {
		if !failsTB(fn) {
			t.Errorf("%s: the helper did not fail the test", name)
		}
	}
	if failsTB(func(tb testing.TB) { zonestest.Members(tb, "a:n1 b:n2") }) {
		t.Errorf("Members failed on a good spec")
	}
}
