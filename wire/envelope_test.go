package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/warpmesh/warp/wire"
)

func key(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

func keyring(t *testing.T, keys ...[]byte) *wire.Keyring {
	t.Helper()
	kr, err := wire.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func seal(t *testing.T, s *wire.Sealer, body []byte) []byte {
	t.Helper()
	d, err := s.Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSealOpenKeySizes(t *testing.T) {
	body := []byte("an events body")
	for _, size := range []int{16, 24, 32} {
		kr := keyring(t, key(size, 1))
		s := wire.NewSealer(kr, "prod")
		o := wire.NewOpener(kr, "prod")
		d := seal(t, s, body)
		if !wire.IsFrame(d) || len(d) != len(body)+wire.MaxOverhead || s.Overhead() != wire.MaxOverhead {
			t.Fatalf("key %d: datagram of %d bytes for a %d-byte body, overhead %d", size, len(d), len(body), s.Overhead())
		}
		if bytes.Contains(d, body) {
			t.Fatalf("key %d: body travels in clear", size)
		}
		got, h, err := o.Open([]byte("x"), d)
		if err != nil {
			t.Fatalf("key %d: open: %v", size, err)
		}
		if string(got) != "x"+string(body) || !h.Sealed || h.Sender != s.Sender() || h.Counter != 1 || h.Version != wire.Version || h.KeyID == 0 {
			t.Fatalf("key %d: body %q, header %+v", size, got, h)
		}
		// A key of another size (and so another key) does not open it.
		other := wire.NewOpener(keyring(t, key(32, 2)), "prod")
		if _, _, err := other.Open(nil, d); !errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("key %d: wrong key: %v, want ErrAuth only", size, err)
		}
	}
}

func TestWrongKeyWithSameID(t *testing.T) {
	// A frame whose key ID names our key but whose tag does not verify
	// (forged or corrupted) is an authentication failure.
	kr := keyring(t, key(32, 1))
	d := seal(t, wire.NewSealer(kr, "l"), []byte("body"))
	d[len(d)-1] ^= 1
	if _, _, err := wire.NewOpener(kr, "l").Open(nil, d); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("bad tag: %v, want ErrAuth", err)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := key(32, 1), key(16, 2)
	sendRing := keyring(t, oldKey)
	recvRing := keyring(t, oldKey)
	s := wire.NewSealer(sendRing, "l")
	o := wire.NewOpener(recvRing, "l")

	withOld := seal(t, s, []byte("old"))
	// Step 1: every node adds the new key; the sender still uses the old one.
	if err := sendRing.AddKey(newKey); err != nil {
		t.Fatal(err)
	}
	if err := recvRing.AddKey(newKey); err != nil {
		t.Fatal(err)
	}
	stillOld := seal(t, s, []byte("still old"))
	// Step 2: the sender makes the new key primary before the receiver does:
	// the receiver opens it with its installed non-primary key.
	if err := sendRing.UseKey(newKey); err != nil {
		t.Fatal(err)
	}
	withNew := seal(t, s, []byte("new"))
	for _, d := range [][]byte{withOld, stillOld, withNew} {
		if _, _, err := o.Open(nil, d); err != nil {
			t.Fatalf("during rotation: %v", err)
		}
	}
	hOld, hNew := headerKeyID(withOld), headerKeyID(withNew)
	if hOld == hNew {
		t.Fatalf("old and new key share key ID %08x", hOld)
	}
	// Step 3: the old key is removed: frames sealed with it fail with ErrAuth.
	lateOld := seal(t, wire.NewSealer(keyring(t, oldKey), "l"), []byte("late"))
	if err := recvRing.UseKey(newKey); err != nil {
		t.Fatal(err)
	}
	if err := recvRing.RemoveKey(oldKey); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, lateOld); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("frame sealed with a removed key: %v, want ErrAuth", err)
	}
	if _, _, err := o.Open(nil, seal(t, s, []byte("after"))); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
}

func headerKeyID(d []byte) uint32 { return binary.BigEndian.Uint32(d[7:11]) }

func TestLabel(t *testing.T) {
	kr := keyring(t, key(32, 1))
	d := seal(t, wire.NewSealer(kr, "cluster-a"), []byte("b"))
	if _, _, err := wire.NewOpener(kr, "cluster-b").Open(nil, d); !errors.Is(err, wire.ErrLabel) {
		t.Fatalf("other label: %v, want ErrLabel", err)
	}
	// Unauthenticated frames carry the label too.
	d = seal(t, wire.NewSealer(nil, "cluster-a"), []byte("b"))
	if _, _, err := wire.NewOpener(nil, "cluster-b").Open(nil, d); !errors.Is(err, wire.ErrLabel) {
		t.Fatalf("other label, unauthenticated: %v, want ErrLabel", err)
	}
}

func TestVersion(t *testing.T) {
	d := seal(t, wire.NewSealer(nil, "l"), []byte("b"))
	d[1] = 9
	_, _, err := wire.NewOpener(nil, "l").Open(nil, d)
	var werr *wire.Error
	if !errors.Is(err, wire.ErrVersion) || !errors.As(err, &werr) || !bytes.Contains([]byte(werr.Detail), []byte("version 9")) {
		t.Fatalf("unknown version: %v, want ErrVersion naming version 9", err)
	}
	if wire.Reason(err) != "version" {
		t.Fatalf("Reason = %q", wire.Reason(err))
	}
}

func TestModeMismatch(t *testing.T) {
	kr := keyring(t, key(32, 1))
	clear := seal(t, wire.NewSealer(nil, "l"), []byte("b"))
	if _, _, err := wire.NewOpener(kr, "l").Open(nil, clear); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("unauthenticated frame to a keyed opener: %v, want ErrAuth", err)
	}
	sealed := seal(t, wire.NewSealer(kr, "l"), []byte("b"))
	if _, _, err := wire.NewOpener(nil, "l").Open(nil, sealed); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("sealed frame to a keyless opener: %v, want ErrAuth", err)
	}
}

func TestUnauthenticated(t *testing.T) {
	kr := keyring(t) // empty
	s := wire.NewSealer(kr, "l")
	o := wire.NewOpener(kr, "l")
	body := []byte("clear body")
	d := seal(t, s, body)
	if len(d) != len(body)+s.Overhead() || s.Overhead() != wire.HeaderSize+4 || !bytes.Contains(d, body) {
		t.Fatalf("unauthenticated datagram: %d bytes, overhead %d", len(d), s.Overhead())
	}
	got, h, err := o.Open(nil, d)
	if err != nil || !bytes.Equal(got, body) || h.Sealed || h.KeyID != 0 {
		t.Fatalf("open: %q %+v %v", got, h, err)
	}
	// Corruption anywhere after the label is caught by the checksum.
	for i := 11; i < len(d); i++ {
		c := bytes.Clone(d)
		c[i] ^= 0x40
		if _, _, err := wire.NewOpener(kr, "l").Open(nil, c); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("flipped byte %d: %v, want ErrMalformed", i, err)
		}
	}
	// The duplicate filter works without keys too.
	if _, _, err := o.Open(nil, d); !errors.Is(err, wire.ErrReplay) {
		t.Fatalf("duplicate unauthenticated frame: %v, want ErrReplay", err)
	}
	// Adding a key switches the sealer to sealed frames on the next frame.
	if err := kr.AddKey(key(24, 3)); err != nil {
		t.Fatal(err)
	}
	if d := seal(t, s, body); d[2]&1 == 0 || s.Overhead() != wire.MaxOverhead {
		t.Fatalf("sealer did not pick up the new key")
	}
}

func TestReplay(t *testing.T) {
	kr := keyring(t, key(32, 7))
	s := wire.NewSealer(kr, "l")
	o := wire.NewOpener(kr, "l")
	first := seal(t, s, []byte("1"))
	if _, _, err := o.Open(nil, first); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, first); !errors.Is(err, wire.ErrReplay) || wire.Reason(err) != "replay" {
		t.Fatalf("same frame twice: %v, want ErrReplay", err)
	}
	// Frames may arrive out of order within the window, each once.
	var held [][]byte
	for range wire.ReplayWindow + 10 {
		held = append(held, seal(t, s, []byte("n")))
	}
	latest := held[len(held)-1]
	if _, _, err := o.Open(nil, latest); err != nil {
		t.Fatal(err)
	}
	inside := held[len(held)-wire.ReplayWindow+5]
	if _, _, err := o.Open(nil, inside); err != nil {
		t.Fatalf("late frame inside the window: %v", err)
	}
	if _, _, err := o.Open(nil, inside); !errors.Is(err, wire.ErrReplay) {
		t.Fatalf("late frame twice: %v", err)
	}
	if _, _, err := o.Open(nil, held[0]); !errors.Is(err, wire.ErrReplay) {
		t.Fatalf("frame older than the window: %v, want ErrReplay", err)
	}
	// A forged frame does not move the window: a bad tag on a far-ahead
	// counter is refused, and the real frame with that counter still opens.
	s2 := wire.NewSealerAt(kr, "l", wire.SenderID{1}, 1<<40)
	ahead := seal(t, s2, []byte("x"))
	forged := bytes.Clone(ahead)
	forged[len(forged)-3] ^= 1
	if _, _, err := o.Open(nil, forged); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("forged: %v", err)
	}
	if _, _, err := o.Open(nil, ahead); err != nil {
		t.Fatalf("genuine frame after a forged copy: %v", err)
	}
}

func TestSenderEviction(t *testing.T) {
	kr := keyring(t, key(16, 1))
	o := wire.NewOpener(kr, "l", wire.WithMaxSenders(4))
	sealers := make([]*wire.Sealer, 6)
	firsts := make([][]byte, 6)
	for i := range sealers {
		sealers[i] = wire.NewSealer(kr, "l")
		firsts[i] = seal(t, sealers[i], []byte("x"))
		if _, _, err := o.Open(nil, firsts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.Senders(); n != 4 {
		t.Fatalf("opener keeps %d senders, want 4", n)
	}
	// The four most recent senders are remembered...
	for i := 2; i < 6; i++ {
		if _, _, err := o.Open(nil, firsts[i]); !errors.Is(err, wire.ErrReplay) {
			t.Fatalf("sender %d: replay accepted: %v", i, err)
		}
	}
	// ...and the evicted ones have lost their window, as documented.
	if _, _, err := o.Open(nil, firsts[0]); err != nil {
		t.Fatalf("evicted sender's frame: %v, want accepted", err)
	}
}

func TestSenderIDsAndCounters(t *testing.T) {
	seen := map[wire.SenderID]bool{}
	for range 2000 {
		id := wire.NewSealer(nil, "l").Sender()
		if seen[id] || id == (wire.SenderID{}) {
			t.Fatalf("sender ID %x repeated", id)
		}
		seen[id] = true
	}
	// Counters increase per frame, across concurrent callers, without gaps
	// or repeats.
	kr := keyring(t, key(32, 1))
	s := wire.NewSealer(kr, "l")
	o := wire.NewOpener(kr, "l")
	const workers, each = 4, 300
	counters := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			last := uint64(0)
			for i := range each {
				d, err := s.Seal(nil, fmt.Appendf(nil, "%d/%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				_, h, err := o.Open(nil, d)
				if err != nil {
					t.Error(err)
					return
				}
				if h.Counter <= last {
					t.Errorf("counter went from %d to %d", last, h.Counter)
				}
				last = h.Counter
				counters <- h.Counter
			}
		})
	}
	wg.Wait()
	close(counters)
	got := map[uint64]bool{}
	for c := range counters {
		if got[c] {
			t.Fatalf("counter %d used twice", c)
		}
		got[c] = true
	}
	for c := uint64(1); c <= workers*each; c++ {
		if !got[c] {
			t.Fatalf("counter %d missing", c)
		}
	}
}

func TestMalformedDatagrams(t *testing.T) {
	kr := keyring(t, key(32, 1))
	s := wire.NewSealerAt(kr, "l", wire.SenderID{9}, 1)
	good := seal(t, s, []byte("some body bytes"))
	zeroCounter := seal(t, wire.NewSealerAt(kr, "l", wire.SenderID{9}, 0), []byte("b"))
	badFlags := bytes.Clone(good)
	badFlags[2] |= 0x80
	cases := []struct {
		name string
		d    []byte
		want error
	}{
		{"empty", nil, wire.ErrMalformed},
		{"not ours", []byte{0x01, 0x02, 0x03}, wire.ErrMalformed},
		{"marker only", []byte{wire.Marker}, wire.ErrMalformed},
		{"header only", good[:wire.HeaderSize], wire.ErrMalformed},
		{"no tag", good[:wire.HeaderSize+4], wire.ErrMalformed},
		{"flags", badFlags, wire.ErrMalformed},
		{"counter zero", zeroCounter, wire.ErrMalformed},
		{"oversize", make([]byte, wire.MaxDatagramSize+1), wire.ErrTooLarge},
	}
	for _, c := range cases {
		_, _, err := wire.NewOpener(kr, "l").Open(nil, c.d)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Every truncation and every bit flip fails, without panicking.
	for n := range len(good) {
		if _, _, err := wire.NewOpener(kr, "l").Open(nil, good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: opened", n)
		}
	}
	for i := range len(good) * 8 {
		d := bytes.Clone(good)
		d[i/8] ^= 1 << (i % 8)
		if _, _, err := wire.NewOpener(kr, "l").Open(nil, d); err == nil {
			t.Fatalf("bit %d flipped: opened", i)
		}
	}
	if _, err := s.Seal(nil, make([]byte, wire.MaxSealedBody+1)); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
	if d, err := s.Seal(nil, make([]byte, wire.MaxSealedBody)); err != nil || len(d) != wire.MaxDatagramSize {
		t.Fatalf("largest body: %d bytes, %v", len(d), err)
	}
}

func TestReason(t *testing.T) {
	cases := map[error]string{
		nil:                               "",
		wire.ErrMalformed:                 "malformed",
		wire.ErrVersion:                   "version",
		wire.ErrLabel:                     "label",
		wire.ErrAuth:                      "auth",
		wire.ErrReplay:                    "replay",
		wire.ErrTooLarge:                  "oversize",
		fmt.Errorf("x: %w", wire.ErrAuth): "auth",
		errors.New("other"):               "malformed",
	}
	for err, want := range cases {
		if got := wire.Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestConcurrentOpenersAndRotation runs sealers, openers and key changes at
// once, for the race detector: every frame either opens or fails with
// ErrAuth (sealed with a key the opener dropped), never anything else.
func TestConcurrentOpenersAndRotation(t *testing.T) {
	k1, k2 := key(32, 1), key(32, 2)
	kr := keyring(t, k1, k2)
	s := wire.NewSealer(kr, "l")
	o := wire.NewOpener(kr, "l")
	var wg, rotator sync.WaitGroup
	stop := make(chan struct{})
	rotator.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := [][]byte{k1, k2}[i%2]
			if err := kr.UseKey(k); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for range 500 {
				d, err := s.Seal(nil, []byte("payload"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, _, err := o.Open(nil, d); err != nil {
					t.Errorf("open during key flips: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rotator.Wait()
}
