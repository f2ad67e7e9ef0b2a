package membership

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"slices"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/wire"
)

func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func derive(k []byte) []byte { return wire.DeriveKey(k, memberlistKeyPurpose) }

// checkRing fails unless memberlist's keyring holds exactly the derivations
// of want, in order, and none of the raw keys.
func checkRing(t *testing.T, step string, ring *memberlist.Keyring, want ...[]byte) {
	t.Helper()
	got := slices.Clone(ring.GetKeys())
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", step, len(got), len(want))
	}
	for i, k := range want {
		if !bytes.Equal(got[i], derive(k)) {
			t.Fatalf("%s: key %d is not the derivation of the wanted key", step, i)
		}
		for _, g := range got {
			if bytes.Equal(g, k) {
				t.Fatalf("%s: a raw cluster key reached memberlist", step)
			}
		}
	}
}

func TestKeySyncFollowsRotation(t *testing.T) {
	k1, k2, k3 := randomKey(t), randomKey(t), randomKey(t)
	kr, err := wire.NewKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := newMemberlistKeyring(kr)
	if err != nil {
		t.Fatal(err)
	}
	s := &keySync{src: kr, dst: ring, log: newLimitedLog(slog.New(slog.DiscardHandler), 1, 1)}
	kr.Watch(s.sync)
	checkRing(t, "start", ring, k1)

	steps := []struct {
		name string
		do   func() error
		want [][]byte
	}{
		{"add k2", func() error { return kr.AddKey(k2) }, [][]byte{k1, k2}},
		{"add k3", func() error { return kr.AddKey(k3) }, [][]byte{k1, k2, k3}},
		{"use k2", func() error { return kr.UseKey(k2) }, [][]byte{k2, k1, k3}},
		{"remove k1 (middle)", func() error { return kr.RemoveKey(k1) }, [][]byte{k2, k3}},
		{"use k3", func() error { return kr.UseKey(k3) }, [][]byte{k3, k2}},
		{"remove k2 (last)", func() error { return kr.RemoveKey(k2) }, [][]byte{k3}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		checkRing(t, st.name, ring, st.want...)
	}

	// After stop, the keyring's changes no longer reach memberlist.
	s.stop()
	if err := kr.AddKey(k1); err != nil {
		t.Fatal(err)
	}
	checkRing(t, "after stop", ring, k3)
}

func TestMemberlistKeyringForEmptyAndNil(t *testing.T) {
	if ring, err := newMemberlistKeyring(nil); ring != nil || err != nil {
		t.Errorf("nil keyring: %v %v", ring, err)
	}
	kr, _ := wire.NewKeyring()
	ring, err := newMemberlistKeyring(kr)
	if err != nil || len(ring.GetKeys()) != 0 {
		t.Fatalf("empty keyring: %v %v", ring, err)
	}
	// Keys added later are installed: encryption turns on.
	s := &keySync{src: kr, dst: ring, log: newLimitedLog(slog.New(slog.DiscardHandler), 1, 1)}
	kr.Watch(s.sync)
	k := randomKey(t)
	if err := kr.AddKey(k); err != nil {
		t.Fatal(err)
	}
	checkRing(t, "first key", ring, k)
}
