package wire

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors of the keyring.
var (
	// ErrKeySize is returned for a key that is not 16, 24 or 32 bytes long.
	ErrKeySize = errors.New("wire: key must be 16, 24 or 32 bytes")
	// ErrNoSuchKey is returned when a key to use or remove is not installed.
	ErrNoSuchKey = errors.New("wire: no such key")
	// ErrPrimaryKey is returned when removing the primary key.
	ErrPrimaryKey = errors.New("wire: cannot remove the primary key")
)

// Keyring holds the cluster's secret keys: every installed key is accepted
// on input, the primary one is used to send. Keys can be added, made primary
// and removed while frames flow; a rotation is: add the new key on every
// node, make it primary on every node, then remove the old one.
//
// A Keyring is safe for concurrent use. The zero Keyring holds no key;
// frames sealed with it are authenticated by nobody (see Sealer).
type Keyring struct {
	mu       sync.RWMutex
	keys     [][]byte // keys[0] is the primary; the slice is replaced, never modified in place
	watchers []func()
	// version is written under mu but read without it, so that sealers and
	// openers can check on every frame, without contention, whether their
	// derived keys are still current.
	version atomic.Uint64
}

// NewKeyring returns a keyring holding keys, the first one primary. With no
// keys it returns an empty keyring (unauthenticated operation).
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, key := range keys {
		if err := checkKey(key); err != nil {
			return nil, fmt.Errorf("wire: key %d: %w", i, err)
		}
		if k.index(key) >= 0 {
			continue
		}
		k.keys = append(k.keys, bytes.Clone(key))
	}
	return k, nil
}

func checkKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return ErrKeySize
}

func (k *Keyring) index(key []byte) int {
	for i, have := range k.keys {
		if bytes.Equal(have, key) {
			return i
		}
	}
	return -1
}

// AddKey installs key as an accepted key. Adding a key that is installed
// already does nothing. The first key added to an empty keyring becomes
// primary.
func (k *Keyring) AddKey(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k.mu.Lock()
	if k.index(key) >= 0 {
		k.mu.Unlock()
		return nil
	}
	k.keys = append(k.keys[:len(k.keys):len(k.keys)], bytes.Clone(key))
	return k.changedLocked()
}

// UseKey makes an installed key the primary one.
func (k *Keyring) UseKey(key []byte) error {
	k.mu.Lock()
	i := k.index(key)
	if i < 0 {
		k.mu.Unlock()
		return ErrNoSuchKey
	}
	if i == 0 {
		k.mu.Unlock()
		return nil
	}
	keys := make([][]byte, 0, len(k.keys))
	keys = append(keys, k.keys[i])
	keys = append(keys, k.keys[:i]...)
	keys = append(keys, k.keys[i+1:]...)
	k.keys = keys
	return k.changedLocked()
}

// RemoveKey uninstalls a key that is not the primary one.
func (k *Keyring) RemoveKey(key []byte) error {
	k.mu.Lock()
	i := k.index(key)
	switch {
	case i < 0:
		k.mu.Unlock()
		return ErrNoSuchKey
	case i == 0:
		k.mu.Unlock()
		return ErrPrimaryKey
	}
	k.keys = append(k.keys[:i:i], k.keys[i+1:]...)
	return k.changedLocked()
}

// changedLocked bumps the version, unlocks, and tells the watchers.
func (k *Keyring) changedLocked() error {
	k.version.Add(1)
	watchers := k.watchers
	k.mu.Unlock()
	for _, w := range watchers {
		w()
	}
	return nil
}

// Watch registers fn to be called after every change of the keyring (from
// the goroutine that made the change, after the change is visible). fn must
// not block or call Watch. There is no way to unregister: a keyring lives as
// long as the components that watch it.
func (k *Keyring) Watch(fn func()) {
	k.mu.Lock()
	k.watchers = append(k.watchers, fn)
	k.mu.Unlock()
}

// Keys returns copies of the installed keys, the primary first.
func (k *Keyring) Keys() [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([][]byte, len(k.keys))
	for i, key := range k.keys {
		out[i] = bytes.Clone(key)
	}
	return out
}

// PrimaryKey returns a copy of the primary key, or nil for an empty keyring.
func (k *Keyring) PrimaryKey() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.keys) == 0 {
		return nil
	}
	return bytes.Clone(k.keys[0])
}

// Empty reports whether the keyring holds no key.
func (k *Keyring) Empty() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys) == 0
}

// Version counts the changes made to the keyring, so that holders of
// derived state can tell when to refresh it.
func (k *Keyring) Version() uint64 {
	return k.version.Load()
}

// snapshot returns the installed keys, the primary first, and the version
// they belong to. The slice and the keys are shared: callers must not
// modify them (the keyring never does; changes replace the slice).
func (k *Keyring) snapshot() ([][]byte, uint64) {
	if k == nil {
		return nil, 0
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.version.Load()
}

// DeriveKey derives a 32-byte key for one purpose from a cluster key with
// HKDF-SHA256, so that no raw key is ever used by two schemes (our frames
// and memberlist's packets, for example). purpose names the scheme and its
// version, such as "warp memberlist v1".
func DeriveKey(key []byte, purpose string) []byte {
	out, err := hkdf.Key(sha256.New, key, nil, purpose, 32)
	if err != nil {
		// Only possible for an output longer than 255 hash blocks.
		panic("wire: hkdf: " + err.Error())
	}
	return out
}
