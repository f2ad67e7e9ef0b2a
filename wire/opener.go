package wire

import (
	"crypto/cipher"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// DefaultMaxSenders is the default number of senders whose replay windows
// an Opener keeps.
const DefaultMaxSenders = 4096

// OpenerOption configures an Opener.
type OpenerOption func(*Opener)

// WithMaxSenders sets how many senders' replay windows the Opener keeps
// (DefaultMaxSenders when n <= 0). See Opener for what eviction means.
func WithMaxSenders(n int) OpenerOption {
	return func(o *Opener) {
		if n > 0 {
			o.maxSenders = n
		}
	}
}

// openKey is one installed key as an Opener uses it.
type openKey struct {
	id   uint32
	aead cipher.AEAD
}

// openKeys is an Opener's view of the keyring at one version.
type openKeys struct {
	version uint64
	keys    []openKey // empty: unauthenticated
}

// Opener checks and unwraps datagrams made by Sealers of the same cluster:
// the envelope, the label, the key, the authentication tag (or checksum)
// and the sender's replay window.
//
// Every installed key is tried (the one the frame names by its key ID), so
// frames sealed with a key that is installed but not primary still open
// during a rotation, and frames sealed with a removed key fail with ErrAuth.
// An Opener with no key accepts only unauthenticated frames, and one with
// keys only sealed frames.
//
// The Opener keeps a replay window of 1024 counters for each of the most
// recently heard senders (DefaultMaxSenders, see WithMaxSenders). A sender
// that falls out of that table loses its window: an old frame of it would
// be accepted once more. Only authenticated frames create windows, so only a
// key holder can push senders out.
//
// An Opener is safe for concurrent use.
type Opener struct {
	kr         *Keyring
	label      []byte // the cluster label, bound into every checksum and tag
	tag        [4]byte
	maxSenders int
	keys       atomic.Pointer[openKeys]

	mu      sync.Mutex
	senders *senderTable
}

// NewOpener returns an Opener for the cluster named label, authenticating
// with the keys of kr (nil or empty: unauthenticated frames only).
func NewOpener(kr *Keyring, label string, opts ...OpenerOption) *Opener {
	o := &Opener{kr: kr, label: []byte(label), tag: labelTag(label), maxSenders: DefaultMaxSenders}
	for _, opt := range opts {
		opt(o)
	}
	o.senders = newSenderTable(o.maxSenders)
	return o
}

// current returns the keys for the keyring's current version, deriving
// them again after a change.
func (o *Opener) current() *openKeys {
	k := o.keys.Load()
	if k != nil && (o.kr == nil || k.version == o.kr.Version()) {
		return k
	}
	keys, version := o.kr.snapshot()
	k = &openKeys{version: version, keys: make([]openKey, 0, len(keys))}
	for _, key := range keys {
		aead, err := chacha20poly1305.NewX(DeriveKey(key, framesKeyPurpose))
		if err != nil {
			panic("wire: " + err.Error()) // DeriveKey always returns 32 bytes.
		}
		k.keys = append(k.keys, openKey{id: keyID(key), aead: aead})
	}
	o.keys.Store(k)
	return k
}

// Open checks one datagram and appends its body to dst. It returns the
// body (dst extended), the envelope header, and an error matching one of
// ErrTooLarge, ErrMalformed, ErrVersion, ErrLabel, ErrAuth or ErrReplay.
// datagram is not retained; dst's spare capacity must not overlap it.
func (o *Opener) Open(dst, datagram []byte) (body []byte, h Header, err error) {
	d := datagram
	switch {
	case len(d) > MaxDatagramSize:
		return dst, h, errorf(ErrTooLarge, "datagram of %d bytes, limit %d", len(d), MaxDatagramSize)
	case len(d) < 2 || d[0] != Marker:
		return dst, h, errorf(ErrMalformed, "not a frame (no marker byte)")
	case d[offVersion] != Version:
		return dst, h, errorf(ErrVersion, "frame version %d, this build speaks %d", d[offVersion], Version)
	case len(d) < HeaderSize+checksumSize:
		return dst, h, errorf(ErrMalformed, "truncated: %d bytes", len(d))
	case d[offFlags]&^flagSealed != 0:
		return dst, h, errorf(ErrMalformed, "unknown envelope flags 0x%02x", d[offFlags])
	case [4]byte(d[offLabel:offKeyID]) != o.tag:
		return dst, h, errorf(ErrLabel, "label tag %x, ours %x", d[offLabel:offKeyID], o.tag)
	}
	h = Header{
		Version: d[offVersion],
		Sealed:  d[offFlags]&flagSealed != 0,
		KeyID:   binary.BigEndian.Uint32(d[offKeyID:]),
		Sender:  SenderID(d[offSender:offCounter]),
		Counter: binary.BigEndian.Uint64(d[offCounter:]),
	}
	switch {
	case h.Counter == 0:
		return dst, h, errorf(ErrMalformed, "counter 0")
	case !h.Sealed && h.KeyID != 0:
		return dst, h, errorf(ErrMalformed, "key id %08x on an unsealed frame", h.KeyID)
	}
	keys := o.current()
	switch {
	case h.Sealed && len(keys.keys) == 0:
		return dst, h, errorf(ErrAuth, "sealed frame but no key installed")
	case !h.Sealed && len(keys.keys) > 0:
		return dst, h, errorf(ErrAuth, "unauthenticated frame refused: keys are installed")
	}
	// Refuse a known replay before spending a decryption on it; the window
	// moves only below, once the frame is authentic.
	o.mu.Lock()
	replayed := o.senders.seen(h.Sender, h.Counter)
	o.mu.Unlock()
	if replayed {
		return dst, h, errorf(ErrReplay, "counter %d of sender %x", h.Counter, h.Sender)
	}
	if body, err = o.unwrap(dst, d, h, keys); err != nil {
		return dst, h, err
	}
	o.mu.Lock()
	fresh := o.senders.accept(h.Sender, h.Counter)
	o.mu.Unlock()
	if !fresh {
		return dst, h, errorf(ErrReplay, "counter %d of sender %x", h.Counter, h.Sender)
	}
	return body, h, nil
}

// unwrap authenticates the frame (or checks its checksum) and appends its
// body to dst.
func (o *Opener) unwrap(dst, d []byte, h Header, keys *openKeys) ([]byte, error) {
	header := d[:HeaderSize]
	if !h.Sealed {
		n := len(d) - checksumSize
		sum := crc32.Update(0, castagnoli, d[:n])
		sum = crc32.Update(sum, castagnoli, o.label)
		if sum != binary.BigEndian.Uint32(d[n:]) {
			return dst, errorf(ErrMalformed, "checksum mismatch")
		}
		return append(dst, d[HeaderSize:n]...), nil
	}
	if len(d) < HeaderSize+tagSize {
		return dst, errorf(ErrMalformed, "truncated: %d bytes", len(d))
	}
	nonce, ciphertext := header[offSender:], d[HeaderSize:]
	known := false
	for _, k := range keys.keys {
		if k.id != h.KeyID {
			continue
		}
		known = true
		var out []byte
		var err error
		withAAD(header, o.label, func(aad []byte) {
			out, err = k.aead.Open(dst, nonce, ciphertext, aad)
		})
		if err == nil {
			return out, nil
		}
	}
	if !known {
		return dst, errorf(ErrAuth, "unknown key id %08x", h.KeyID)
	}
	return dst, errorf(ErrAuth, "bad authentication tag (key id %08x)", h.KeyID)
}

// Senders returns how many senders' replay windows the Opener holds.
func (o *Opener) Senders() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.senders.len()
}
