package membership

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus of FuzzHandleAnnouncement in testdata/fuzz")

// announcementSeeds are datagrams a group may carry: authentic
// announcements of the fuzz cluster (label "fz", mcKey, and keyless),
// and ones of strangers.
func announcementSeeds(t testing.TB) map[string][]byte {
	peer := wire.Announce{Node: "peer", Addr: netip.MustParseAddrPort("192.0.2.7:7946"), Zone: "z"}
	v6 := wire.Announce{Node: "peer6", Addr: netip.MustParseAddrPort("[2001:db8::7]:7946")}
	return map[string][]byte{
		"keyed":         newAnnouncer(t, "fz", mcKey).datagram(t, peer),
		"keyed-ipv6":    newAnnouncer(t, "fz", mcKey).datagram(t, v6),
		"clear":         newAnnouncer(t, "fz").datagram(t, peer),
		"other-key":     newAnnouncer(t, "fz", mcOtherKey).datagram(t, peer),
		"other-label":   newAnnouncer(t, "other", mcKey).datagram(t, peer),
		"own-name":      newAnnouncer(t, "fz", mcKey).datagram(t, wire.Announce{Node: "fz-keyed", Addr: peer.Addr}),
		"unspecified":   newAnnouncer(t, "fz").datagram(t, wire.Announce{Node: "x", Addr: netip.MustParseAddrPort("0.0.0.0:1")}),
		"not-announce":  newAnnouncer(t, "fz").seal(t, []byte{byte(wire.FrameDigest), 0x90}),
		"garbage":       []byte("W\x01\x00not a frame at all"),
		"empty":         nil,
		"marker-only":   {wire.Marker},
		"short-header":  []byte{wire.Marker, 1, 0, 0, 0, 0, 0},
		"announce-body": mustAnnounceBody(t, peer),
	}
}

// idleMembership is a node that was never started: what handle reads of
// a Membership (its config, log, snapshot and state), without memberlist's
// goroutines, whose work would make the fuzzer's coverage depend on timing.
func idleMembership(t testing.TB, cfg Config) *Membership {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	m := &Membership{cfg: cfg, log: newLimitedLog(cfg.Logger, cfg.LogRate, cfg.LogBurst), members: map[string]Node{}}
	m.self = netip.MustParseAddrPort("192.0.2.1:7946")
	m.local = Node{Name: cfg.Name, Addr: m.self, State: syncbus.MemberAlive}
	m.publish()
	return m
}

func mustAnnounceBody(t testing.TB, a wire.Announce) []byte {
	b, err := wire.AppendAnnounce(nil, &a, false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzHandleAnnouncement feeds any datagram to the discovery of a keyed
// node and of a keyless one: nothing panics, every datagram is accounted
// for exactly once (ignored, dropped by reason, or queued for a join),
// and the keyed node queues joins only for what a key holder sealed.
func FuzzHandleAnnouncement(f *testing.F) {
	seeds := announcementSeeds(f)
	for _, d := range seeds {
		f.Add(d)
	}
	if *updateCorpus {
		dir := filepath.Join("testdata", "fuzz", "FuzzHandleAnnouncement")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		for name, d := range seeds {
			data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(d)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(data), 0o644); err != nil {
				f.Fatal(err)
			}
		}
	}
	keyedCfg := testConfig("fz-keyed")
	keyedCfg.Label, keyedCfg.Keyring = "fz", mcKeyring(f, mcKey)
	keyed := idleMembership(f, keyedCfg)
	clearCfg := testConfig("fz-clear")
	clearCfg.Label = "fz"
	keyless := idleMembership(f, clearCfg)
	group := netip.MustParseAddrPort("239.1.2.3:7945")
	now := time.Now()

	f.Fuzz(func(t *testing.T, datagram []byte) {
		for _, m := range []*Membership{keyed, keyless} {
			d := newDiscoveryState(m, group, nil)
			// A small replay table: the default one costs more to make
			// than all the rest of an execution.
			d.opener = wire.NewOpener(m.cfg.Keyring, m.cfg.Label, wire.WithMaxSenders(4))
			d.handle(now, datagram)
			d.handle(now, datagram) // the same again: a replay at most
			q := queuedJoins(d)
			st := d.stats()
			var dropped uint64
			for _, n := range st.Dropped {
				dropped += n
			}
			if st.Received != 2 || st.Ignored+dropped+uint64(len(q)) != 2 {
				t.Fatalf("%s: counters do not account for every datagram: %+v, %d queued", m.Name(), st, len(q))
			}
			if len(q) > 1 {
				t.Fatalf("%s: one announcement queued %d joins", m.Name(), len(q))
			}
			if len(q) == 1 && m == keyed {
				body, _, err := wire.NewOpener(keyedCfg.Keyring, "fz", wire.WithMaxSenders(4)).Open(nil, datagram)
				var a wire.Announce
				if err != nil || wire.DecodeAnnounce(body, &a) != nil || a.Addr.Addr().Unmap() != q[0].Addr() {
					t.Fatalf("a join of %v queued for a datagram the cluster key did not seal (%v)", q[0], err)
				}
			}
		}
	})
}
