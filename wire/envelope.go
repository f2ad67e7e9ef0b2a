package wire

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Version is the envelope and frame protocol version this build speaks.
const Version = 1

// Envelope layout (see the package documentation for the full picture).
const (
	offVersion = 1
	offFlags   = 2
	offLabel   = 3
	offKeyID   = 7
	offSender  = 11
	offCounter = 27

	// HeaderSize is the size of the plaintext envelope header.
	HeaderSize = 35
	// tagSize is the Poly1305 tag that ends a sealed frame.
	tagSize = chacha20poly1305.Overhead
	// checksumSize is the CRC-32C that ends an unauthenticated frame.
	checksumSize = 4
	// MaxOverhead is the most the envelope adds to a body: the header and
	// the authentication tag. Budgets for bodies subtract it, so that a
	// body fits its datagram whether or not keys are installed.
	MaxOverhead = HeaderSize + tagSize
	// MaxSealedBody is the largest body Seal accepts.
	MaxSealedBody = MaxDatagramSize - MaxOverhead
)

// flagSealed marks an authenticated, encrypted frame. Without it the body is
// in clear and followed by a CRC-32C. Every other flag bit is reserved and
// must be zero in version 1.
const flagSealed = 0x01

// Purposes for DeriveKey: the AEAD key of our frames and the key ID that
// names a cluster key on the wire without revealing anything about it.
const (
	framesKeyPurpose = "warp frames v1"
	keyIDPurpose     = "warp key id v1"
)

// castagnoli is the CRC-32C table of unauthenticated frames.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SenderID identifies one Sealer: 16 random bytes chosen when it is
// created. With the Sealer's counter it forms the nonce, so that no nonce
// repeats under one key while sender IDs do not collide (a 2^-64 chance
// after 2^32 sealers).
type SenderID [16]byte

// Header is the plaintext envelope header of a frame, as Open reports it.
type Header struct {
	// Version is the frame's protocol version.
	Version uint8
	// Sealed reports whether the frame was authenticated and encrypted.
	Sealed bool
	// KeyID names the key that sealed the frame (0 when not sealed).
	KeyID uint32
	// Sender is the sealer's ID and Counter the frame's number from that
	// sealer, which increases by one per frame from 1.
	Sender  SenderID
	Counter uint64
}

// labelTag is the 4-byte digest of a cluster label carried in every frame,
// so that a frame of another cluster is told apart from one sealed with a
// key we lack. The full label is bound by the authentication tag.
func labelTag(label string) [4]byte {
	sum := sha256.Sum256([]byte(label))
	return [4]byte(sum[:4])
}

// keyID derives the 4-byte ID of a cluster key.
func keyID(key []byte) uint32 {
	return binary.BigEndian.Uint32(DeriveKey(key, keyIDPurpose))
}

// aadPool recycles the buffers that hold the additional authenticated data
// (header and label): the AEAD is called through an interface, so a stack
// buffer would escape anyway.
var aadPool = sync.Pool{New: func() any { return new([]byte) }}

// withAAD calls fn with header||label in a pooled buffer.
func withAAD(header, label []byte, fn func(aad []byte)) {
	p := aadPool.Get().(*[]byte)
	aad := append(append((*p)[:0], header...), label...)
	fn(aad)
	*p = aad[:0]
	aadPool.Put(p)
}

// sealKey is a Sealer's view of the keyring at one version.
type sealKey struct {
	version uint64
	aead    cipher.AEAD // nil: unauthenticated
	id      uint32
}

// Sealer wraps frame bodies into datagrams: it adds the envelope header and
// seals the body with the keyring's primary key (or, with no key installed,
// appends a checksum). It picks up key rotations on the next frame.
//
// A Sealer is safe for concurrent use. Each Sealer has its own sender ID, so
// that nonces never repeat; create one per node and keep it for the life of
// the process rather than one per frame.
type Sealer struct {
	kr      *Keyring
	label   []byte // the cluster label, bound into every checksum and tag
	tag     [4]byte
	sender  SenderID
	counter atomic.Uint64
	key     atomic.Pointer[sealKey]
}

// NewSealer returns a Sealer for the cluster named label, sealing with kr's
// primary key. A nil or empty keyring makes unauthenticated frames, which
// openers accept only while they have no key either.
func NewSealer(kr *Keyring, label string) *Sealer {
	s := &Sealer{kr: kr, label: []byte(label), tag: labelTag(label)}
	_, _ = rand.Read(s.sender[:]) // crypto/rand.Read never fails on supported platforms.
	return s
}

// Sender returns the Sealer's sender ID, so that a node can recognise its
// own frames when a transport echoes them back.
func (s *Sealer) Sender() SenderID { return s.sender }

// Overhead returns how many bytes Seal adds to a body with the keys
// installed now: MaxOverhead when sealing, less when unauthenticated.
func (s *Sealer) Overhead() int {
	if s.current().aead == nil {
		return HeaderSize + checksumSize
	}
	return MaxOverhead
}

// current returns the key state for the keyring's current version,
// deriving it again after a change.
func (s *Sealer) current() *sealKey {
	k := s.key.Load()
	if k != nil && (s.kr == nil || k.version == s.kr.Version()) {
		return k
	}
	keys, version := s.kr.snapshot()
	k = &sealKey{version: version}
	if len(keys) > 0 {
		aead, err := chacha20poly1305.NewX(DeriveKey(keys[0], framesKeyPurpose))
		if err != nil {
			panic("wire: " + err.Error()) // DeriveKey always returns 32 bytes.
		}
		k.aead, k.id = aead, keyID(keys[0])
	}
	s.key.Store(k)
	return k
}

// Seal appends one datagram carrying body to dst and returns it. A body
// over MaxSealedBody is ErrTooLarge (dst is returned unchanged). body must
// not overlap dst's spare capacity.
//
// Each call takes the next counter; at a million frames a second the 64-bit
// counter lasts over half a million years, so it is never reset.
func (s *Sealer) Seal(dst, body []byte) ([]byte, error) {
	if len(body) > MaxSealedBody {
		return dst, errorf(ErrTooLarge, "body of %d bytes, limit %d", len(body), MaxSealedBody)
	}
	k := s.current()
	start := len(dst)
	dst = append(dst, Marker, Version, 0)
	dst = append(dst, s.tag[:]...)
	dst = binary.BigEndian.AppendUint32(dst, k.id)
	dst = append(dst, s.sender[:]...)
	dst = binary.BigEndian.AppendUint64(dst, s.counter.Add(1))
	header := dst[start : start+HeaderSize]
	if k.aead == nil {
		dst = append(dst, body...)
		sum := crc32.Update(0, castagnoli, dst[start:])
		sum = crc32.Update(sum, castagnoli, s.label)
		return binary.BigEndian.AppendUint32(dst, sum), nil
	}
	header[offFlags] = flagSealed
	nonce := header[offSender:HeaderSize] // sender ID || counter
	withAAD(header, s.label, func(aad []byte) {
		dst = k.aead.Seal(dst, nonce, body, aad)
	})
	return dst, nil
}
