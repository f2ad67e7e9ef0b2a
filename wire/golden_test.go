package wire_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/v1 and the fuzz seeds derived from them")

// goldenLabel, goldenSender and goldenCounter fix the envelope of the sealed
// vectors; goldenKey(n) is the n-byte key 0x00, 0x01, …
const goldenLabel = "warp-golden"

var goldenSender = wire.SenderID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}

const goldenCounter = 7

func goldenKey(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func goldenID(b byte) syncbus.EventID {
	var id syncbus.EventID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// goldenEventsOne is one ordinary invalidation.
func goldenEventsOne() *wire.Events {
	return &wire.Events{Origin: "node-a", Boot: 0x0123456789abcdef, Zone: "eu-west-1a", Region: "eu-west-1",
		Events: []wire.Event{{Seq: 1, ID: goldenID(0xa0), Key: "user:123456:profile", Flags: wire.EventAckWanted, Time: 1_750_000_000_123_456_789}}}
}

// goldenEventsFull uses every field and flag.
func goldenEventsFull() *wire.Events {
	return &wire.Events{Origin: "node-b", Boot: 42, Zone: "us-east-1b", Region: "us-east-1", Flags: wire.FlagRelay | wire.FlagRetransmit,
		Events: []wire.Event{
			{Seq: 1000, ID: goldenID(1), Key: "user:1:profile", Op: syncbus.OpInvalidate, Scope: syncbus.ScopeGlobal, Flags: wire.EventAckWanted, Time: 1_750_000_000_000_000_000, VectorClock: map[string]uint64{"node-b": 12, "node-a": 7}},
			{Seq: 1001, ID: goldenID(2), Key: "lease-77", Op: syncbus.OpLeaseRevoke, Time: 1_750_000_000_000_001_000},
			{Seq: 999, ID: goldenID(3), Key: "orders:", Op: syncbus.OpResync, Flags: wire.EventRelayed, Origin: "gw-eu", Zone: "eu-west-1c", Region: "eu-west-1", Time: 1_749_999_999_000_000_000},
			{Seq: 1002, ID: goldenID(4), Key: "cart:9", Region: "ap-south-1", Time: 1_750_000_000_000_002_000},
		}}
}

func goldenEventsLZ4() *wire.Events {
	f := &wire.Events{Origin: "node-c", Boot: 7, Zone: "z1", Region: "r1"}
	for i := range 40 {
		f.Events = append(f.Events, wire.Event{Seq: uint64(500 + i), ID: goldenID(byte(i)), Key: fmt.Sprintf("user:%06d:profile", 100000+i), Time: 1_750_000_000_000_000_000 + int64(i)*2500})
	}
	return f
}

type goldenBody struct {
	name   string
	fuzz   string // the fuzz target seeded with this body
	encode func() ([]byte, error)
	check  func([]byte) error // decodes the body and compares it to the value
}

func goldenBodies() []goldenBody {
	events := func(name string, f *wire.Events, compress bool) goldenBody {
		return goldenBody{name, "FuzzDecodeEvents",
			func() ([]byte, error) { return wire.AppendEvents(nil, f, compress) },
			func(b []byte) error {
				var got wire.Events
				if err := wire.DecodeEvents(b, &got); err != nil {
					return err
				}
				if !reflect.DeepEqual(normEvents(&got), normEvents(f)) {
					return fmt.Errorf("decoded %+v, want %+v", got, *f)
				}
				return nil
			}}
	}
	acks := &wire.Acks{Origin: "node-a", Boot: 5, Acks: []wire.Ack{{Node: "node-b", Seqs: []uint64{1, 2, 3, 7}, Boot: 11}, {Node: "node-c", Seqs: []uint64{2}, Boot: 12}}}
	repair := &wire.RepairRequest{Origin: "node-a", Boot: 5, Ranges: []wire.SeqRange{{10, 12}, {20, 20}}}
	unavailable := &wire.Unavailable{Origin: "node-a", Boot: 5, Ranges: []wire.SeqRange{{1, 99}}}
	digest := &wire.Digest{Origin: "node-a", Boot: 5, Seq: 1234, Start: 1000, Blocked: true}
	presence := &wire.Presence{Node: "bridge-1", Zone: "eu-west-1a", Region: "eu-west-1", Boot: 9, Interval: 5 * time.Second}
	credit := &wire.Credit{Origin: "node-a", Boot: 5, Node: "node-b", NodeBoot: 11, Limit: 70000}
	announce := &wire.Announce{Node: "node-a", Addr: netip.MustParseAddrPort("10.1.2.3:7946"), Zone: "eu-west-1a"}
	announce6 := &wire.Announce{Node: "node-b", Addr: netip.MustParseAddrPort("[fd00::1:2]:7946"), Zone: "eu-west-1b"}
	return []goldenBody{
		events("events-one", goldenEventsOne(), false),
		events("events-full", goldenEventsFull(), false),
		events("events-lz4", goldenEventsLZ4(), true),
		{"acks", "FuzzDecodeAcks", func() ([]byte, error) { return wire.AppendAcks(nil, acks, false) }, func(b []byte) error {
			var got wire.Acks
			if err := wire.DecodeAcks(b, &got); err != nil {
				return err
			}
			return compare(normAcks(&got), normAcks(acks))
		}},
		{"repair-request", "FuzzDecodeRepairRequest", func() ([]byte, error) { return wire.AppendRepairRequest(nil, repair, false) }, func(b []byte) error {
			var got wire.RepairRequest
			if err := wire.DecodeRepairRequest(b, &got); err != nil {
				return err
			}
			return compare(&got, repair)
		}},
		{"unavailable", "FuzzDecodeUnavailable", func() ([]byte, error) { return wire.AppendUnavailable(nil, unavailable, false) }, func(b []byte) error {
			var got wire.Unavailable
			if err := wire.DecodeUnavailable(b, &got); err != nil {
				return err
			}
			return compare(&got, unavailable)
		}},
		{"digest", "FuzzDecodeDigest", func() ([]byte, error) { return wire.AppendDigest(nil, digest, false) }, func(b []byte) error {
			var got wire.Digest
			if err := wire.DecodeDigest(b, &got); err != nil {
				return err
			}
			return compare(&got, digest)
		}},
		{"presence", "FuzzDecodePresence", func() ([]byte, error) { return wire.AppendPresence(nil, presence, false) }, func(b []byte) error {
			var got wire.Presence
			if err := wire.DecodePresence(b, &got); err != nil {
				return err
			}
			return compare(&got, presence)
		}},
		{"credit", "FuzzDecodeCredit", func() ([]byte, error) { return wire.AppendCredit(nil, credit, false) }, func(b []byte) error {
			var got wire.Credit
			if err := wire.DecodeCredit(b, &got); err != nil {
				return err
			}
			return compare(&got, credit)
		}},
		{"announce", "FuzzDecodeAnnounce", func() ([]byte, error) { return wire.AppendAnnounce(nil, announce, false) }, func(b []byte) error {
			var got wire.Announce
			if err := wire.DecodeAnnounce(b, &got); err != nil {
				return err
			}
			return compare(&got, announce)
		}},
		{"announce-ipv6", "FuzzDecodeAnnounce", func() ([]byte, error) { return wire.AppendAnnounce(nil, announce6, false) }, func(b []byte) error {
			var got wire.Announce
			if err := wire.DecodeAnnounce(b, &got); err != nil {
				return err
			}
			return compare(&got, announce6)
		}},
	}
}

func compare(got, want any) error {
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("decoded %+v, want %+v", got, want)
	}
	return nil
}

// goldenDatagrams seals the events-one body under each key size and without
// a key.
func goldenDatagrams(t *testing.T, body []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []int{0, 16, 24, 32} {
		var keys [][]byte
		name := "datagram-clear"
		if n > 0 {
			keys = [][]byte{goldenKey(n)}
			name = fmt.Sprintf("datagram-key%d", n)
		}
		s := wire.NewSealerAt(keyring(t, keys...), goldenLabel, goldenSender, goldenCounter)
		out[name] = seal(t, s, body)
	}
	return out
}

func TestGolden(t *testing.T) {
	var eventsOne []byte
	for _, g := range goldenBodies() {
		body, err := g.encode()
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if g.name == "events-one" {
			eventsOne = body
		}
		checkGolden(t, g.name, body)
		if err := g.check(readGolden(t, g.name)); err != nil {
			t.Errorf("%s: golden bytes: %v", g.name, err)
		}
		writeSeed(t, g.fuzz, g.name, body)
	}
	for name, d := range goldenDatagrams(t, eventsOne) {
		checkGolden(t, name, d)
		var keys [][]byte
		if n := strings.TrimPrefix(name, "datagram-key"); n != name {
			size, _ := strconv.Atoi(n)
			keys = [][]byte{goldenKey(size)}
		}
		body, h, err := wire.NewOpener(keyring(t, keys...), goldenLabel).Open(nil, readGolden(t, name))
		if err != nil || !bytes.Equal(body, eventsOne) || h.Sender != goldenSender || h.Counter != goldenCounter {
			t.Errorf("%s: golden datagram opens to %x (%+v, %v)", name, body, h, err)
		}
		writeSeed(t, "FuzzOpen", name, d)
	}
}

func goldenPath(name string) string {
	return filepath.Join("testdata", fmt.Sprintf("v%d", wire.Version), name+".hex")
}

// checkGolden compares got with the stored vector, or stores it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(formatHex(got)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := readGolden(t, name); !bytes.Equal(got, want) {
		t.Errorf("%s: encoding changed (a protocol change: run with -update only if intended)\n got %x\nwant %x", name, got, want)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// formatHex writes 32 bytes per line.
func formatHex(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

// writeSeed stores b in the seed corpus of a fuzz target, with -update.
func writeSeed(t *testing.T, target, name string, b []byte) {
	t.Helper()
	if !*update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
	if err := os.WriteFile(filepath.Join(dir, "golden-"+name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
