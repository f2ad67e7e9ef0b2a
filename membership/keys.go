package membership

import (
	"bytes"
	"log/slog"
	"slices"
	"sync"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/wire"
)

// memberlistKeyPurpose names the key derivation for memberlist's packets,
// so that no cluster key is ever used raw by two schemes.
const memberlistKeyPurpose = "warp memberlist v1"

// derivedKeys returns memberlist's keys for the keyring's keys, the
// primary first.
func derivedKeys(kr *wire.Keyring) [][]byte {
	raw := kr.Keys()
	out := make([][]byte, len(raw))
	for i, k := range raw {
		out[i] = wire.DeriveKey(k, memberlistKeyPurpose)
		clear(k) // our copy of a cluster key is not needed any more
	}
	return out
}

// newMemberlistKeyring returns memberlist's keyring for kr: nil for no
// keyring (no encryption), an empty one for an empty keyring (no encryption
// until keys are added).
func newMemberlistKeyring(kr *wire.Keyring) (*memberlist.Keyring, error) {
	if kr == nil {
		return nil, nil
	}
	keys := derivedKeys(kr)
	if len(keys) == 0 {
		return memberlist.NewKeyring(nil, nil)
	}
	return memberlist.NewKeyring(keys[1:], keys[0])
}

// keySync keeps memberlist's keyring equal to the derivation of the
// cluster keyring as it changes: new keys installed, the primary switched,
// removed keys removed. It is called from whichever goroutine changes the
// cluster keyring, and after Close does nothing.
type keySync struct {
	mu  sync.Mutex
	src *wire.Keyring
	dst *memberlist.Keyring // nil once stopped
	log *limitedLog
}

// sync brings memberlist's keyring up to date. Each call reconciles with
// the keyring's current keys, so concurrent changes cannot leave it behind.
func (s *keySync) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dst == nil {
		return
	}
	want := derivedKeys(s.src)
	if len(want) == 0 {
		return // a keyring never loses its last key; nothing installed yet
	}
	for _, k := range want {
		if err := s.dst.AddKey(k); err != nil {
			s.log.Log(slog.LevelError, "membership: cannot install a gossip key", "err", err)
			return
		}
	}
	if err := s.dst.UseKey(want[0]); err != nil {
		s.log.Log(slog.LevelError, "membership: cannot switch the gossip primary key", "err", err)
		return
	}
	s.removeStale(want)
}

// removeStale removes memberlist's keys that are not in want.
//
// memberlist's RemoveKey shifts the later keys down inside the slice that
// its decryption path may be reading at that moment without a lock. A key
// removed from the end of the ring shifts nothing, so the keys from the
// first stale one on are removed from the last backwards, and the wanted
// ones among them added back. The re-added keys are secondary ones and are
// missing for microseconds at most; the primary key never is.
func (s *keySync) removeStale(want [][]byte) {
	wanted := func(k []byte) bool {
		return slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, k) })
	}
	have := slices.Clone(s.dst.GetKeys())
	first := slices.IndexFunc(have, func(k []byte) bool { return !wanted(k) })
	if first <= 0 {
		return // nothing stale (the primary, at 0, is always wanted)
	}
	tail := have[first:]
	for i := len(tail) - 1; i >= 0; i-- {
		if err := s.dst.RemoveKey(tail[i]); err != nil {
			s.log.Log(slog.LevelError, "membership: cannot remove a gossip key", "err", err)
		}
	}
	for _, k := range tail {
		if wanted(k) {
			if err := s.dst.AddKey(k); err != nil {
				s.log.Log(slog.LevelError, "membership: cannot reinstall a gossip key", "err", err)
			}
		}
	}
}

// stop makes later calls do nothing: the cluster keyring cannot forget a
// watcher, so a closed Membership must ignore it.
func (s *keySync) stop() {
	s.mu.Lock()
	s.dst = nil
	s.mu.Unlock()
}
