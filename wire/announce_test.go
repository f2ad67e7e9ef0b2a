package wire_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/warpmesh/warp/wire"
)

func TestAnnounceRoundTrip(t *testing.T) {
	for _, a := range []*wire.Announce{
		{Node: "node-a", Addr: netip.MustParseAddrPort("10.0.0.7:7946"), Zone: "eu-west-1a"},
		{Node: "n", Addr: netip.MustParseAddrPort("[2001:db8::7]:1")},
		{Node: strings.Repeat("n", wire.MaxNameLen), Addr: netip.MustParseAddrPort("[::ffff:10.0.0.1]:65535"), Zone: strings.Repeat("z", wire.MaxNameLen)},
	} {
		for _, c := range []bool{false, true} {
			if got := roundTrip(t, a, c, wire.FrameAnnounce, wire.AppendAnnounce, wire.DecodeAnnounce); *got != *a {
				t.Errorf("announce: got %+v, want %+v", got, a)
			}
		}
	}
}

// TestAnnounceRefusesWhatCannotBeJoined: the encoder refuses what the
// decoder would, and the decoder refuses an address nobody can join.
func TestAnnounceRefusesWhatCannotBeJoined(t *testing.T) {
	good := netip.MustParseAddrPort("10.0.0.1:7946")
	for name, c := range map[string]struct {
		a    wire.Announce
		want error
	}{
		"no node":   {wire.Announce{Addr: good}, wire.ErrMalformed},
		"long node": {wire.Announce{Node: strings.Repeat("n", wire.MaxNameLen+1), Addr: good}, wire.ErrTooLarge},
		"long zone": {wire.Announce{Node: "n", Addr: good, Zone: strings.Repeat("z", wire.MaxNameLen+1)}, wire.ErrTooLarge},
		"no addr":   {wire.Announce{Node: "n"}, wire.ErrMalformed},
		"port 0":    {wire.Announce{Node: "n", Addr: netip.MustParseAddrPort("10.0.0.1:0")}, wire.ErrMalformed},
		"zone":      {wire.Announce{Node: "n", Addr: netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 7946)}, wire.ErrMalformed},
	} {
		if _, err := wire.AppendAnnounce(nil, &c.a, false); !errors.Is(err, c.want) {
			t.Errorf("%s: encode %v, want %v", name, err, c.want)
		}
	}
	for name, fields := range map[string][]any{
		"bad address": {"n", "10.0.0.300", uint64(7946), "z"},
		"host name":   {"n", "example.com", uint64(7946), "z"},
		"zoned":       {"n", "fe80::1%eth0", uint64(7946), "z"},
		"port 0":      {"n", "10.0.0.1", uint64(0), "z"},
		"big port":    {"n", "10.0.0.1", uint64(70000), "z"},
		"no node":     {"", "10.0.0.1", uint64(7946), "z"},
		"few fields":  {"n", "10.0.0.1", uint64(7946)},
		"long addr":   {"n", strings.Repeat("1", 65), uint64(7946), "z"},
	} {
		body := append([]byte{byte(wire.FrameAnnounce)}, libEncode(t, fields)...)
		var a wire.Announce
		err := wire.DecodeAnnounce(body, &a)
		if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTooLarge) {
			t.Errorf("%s: decode %v, want a malformed or oversize frame", name, err)
		}
	}
}

// TestAnnounceSkipsNewerFields: a newer version may append fields.
func TestAnnounceSkipsNewerFields(t *testing.T) {
	body := append([]byte{byte(wire.FrameAnnounce)}, libEncode(t, []any{"n", "10.0.0.1", uint64(7946), "z", "newer", []any{1, 2}})...)
	var a wire.Announce
	if err := wire.DecodeAnnounce(body, &a); err != nil || a.Node != "n" || a.Addr != netip.MustParseAddrPort("10.0.0.1:7946") || a.Zone != "z" {
		t.Fatalf("announce with newer fields: %+v, %v", a, err)
	}
}
