package input

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/warpmesh/warp/internal/warptest/frametest"
	"github.com/warpmesh/warp/wire"
)

// TestCapturedFrameRoundTrip: each encoding of a frame gives its bytes back.
func TestCapturedFrameRoundTrip(t *testing.T) {
	frame := frametest.Events(t, nil, "")
	for _, in := range []string{hex.EncodeToString(frame), "0x" + hex.EncodeToString(frame), base64.RawURLEncoding.EncodeToString(frame), frametest.QuoteRedis(frame)} {
		got, _, err := CapturedFrame([]byte(in))
		if err != nil || !bytes.Equal(got, frame) {
			t.Errorf("CapturedFrame(%.20q…) = %x, %v", in, got, err)
		}
	}
	if _, _, err := CapturedFrame([]byte("   ")); err == nil {
		t.Error("blank input decoded")
	}
}

// FuzzDecodeInput: no input makes the input decoding (CapturedFrame) or
// the frame printing (PrintBody) panic, and hex and redis-cli quoting of
// any bytes decode back to them.
func FuzzDecodeInput(f *testing.F) {
	f.Add(frametest.Events(f, nil, ""))
	f.Add(frametest.Events(f, bytes.Repeat([]byte{9}, 32), "prod"))
	f.Add([]byte(hex.EncodeToString(frametest.Events(f, nil, ""))))
	f.Add([]byte(frametest.QuoteRedis(frametest.Events(f, nil, ""))))
	f.Add([]byte(`"\x57\x01\"`))
	f.Add([]byte("V wE="))
	f.Add([]byte{0x57, 0x01})
	kr, err := wire.NewKeyring()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if frame, _, err := CapturedFrame(in); err == nil && len(frame) == 0 && len(bytes.TrimSpace(in)) > 2 {
			// A quoted empty string decodes to nothing; anything else does not.
			if !bytes.Equal(bytes.TrimSpace(in), []byte(`""`)) {
				t.Errorf("CapturedFrame(%q) gave an empty frame without error", in)
			}
		}
		// What warp decode does with it, given no keys and no label: a
		// fresh Opener each time, so that no input depends on the last.
		if frame, _, err := CapturedFrame(in); err == nil {
			if body, _, err := wire.NewOpener(kr, "").Open(nil, frame); err == nil {
				var out bytes.Buffer
				if err := PrintBody(&out, body); err == nil && out.Len() == 0 {
					t.Errorf("PrintBody of the body of %q printed nothing", in)
				}
			}
		}
		if len(in) == 0 {
			return
		}
		for _, enc := range []string{hex.EncodeToString(in), frametest.QuoteRedis(in)} {
			got, _, err := CapturedFrame([]byte(enc))
			if len(in) >= 2 && in[0] == wire.Marker && in[1] == wire.Version {
				continue // the encodings start with text, fine, but skip the marker case's ambiguity
			}
			if err != nil || !bytes.Equal(got, in) {
				t.Errorf("CapturedFrame(%q) = %q, %v; want %q", enc, got, err, in)
			}
		}
	})
}
