package membership

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []nodeMeta{
		{Proto: ProtocolVersion},
		{Zone: "eu-west-1a", Region: "eu-west-1", Boot: 1<<63 + 5, Proto: ProtocolVersion, Started: 1_700_000_000_123_456_789},
		{Zone: "zone ünïcode", Region: strings.Repeat("r", MaxNameLen), Boot: 42, Proto: MinProtocolVersion},
	} {
		b := appendMeta(nil, m)
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Errorf("%+v: decoded %+v, %v", m, got, err)
		}
		// Fields a later layout appends are ignored.
		got, err = decodeMeta(append(b, 1, 2, 3))
		if err != nil || got != m {
			t.Errorf("%+v with trailing bytes: decoded %+v, %v", m, got, err)
		}
		// Every truncation fails cleanly, except of the start time, which
		// the first layout did not have.
		for i := range len(b) - 8 {
			if _, err := decodeMeta(b[:i]); !errors.Is(err, ErrMetaMalformed) {
				t.Errorf("%+v cut to %d bytes: %v, want ErrMetaMalformed", m, i, err)
			}
		}
	}
}

// TestMetaOfTheFirstLayout: metadata without the start time decodes, with
// the start time unknown.
func TestMetaOfTheFirstLayout(t *testing.T) {
	m := nodeMeta{Zone: "z", Region: "r", Boot: 7, Proto: ProtocolVersion, Started: 99}
	b := appendMeta(nil, m)
	got, err := decodeMeta(b[:len(b)-8])
	m.Started = 0
	if err != nil || got != m {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, m)
	}
}

func TestMetaRejects(t *testing.T) {
	good := appendMeta(nil, nodeMeta{Zone: "z", Region: "r", Boot: 7, Proto: ProtocolVersion})
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"other layout":  {append([]byte{0xFF}, good[1:]...), ErrMetaMalformed},
		"long zone":     {[]byte{metaMagicV1, 0xFF, 0x01}, ErrMetaMalformed},
		"bad varint":    {[]byte{metaMagicV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMetaMalformed},
		"zone not utf8": {appendMeta(nil, nodeMeta{Zone: "\xff\xfe", Proto: ProtocolVersion}), ErrMetaMalformed},
		"newer proto":   {appendMeta(nil, nodeMeta{Proto: ProtocolVersion + 1}), ErrMetaVersion},
		"older proto":   {appendMeta(nil, nodeMeta{Proto: MinProtocolVersion - 1}), ErrMetaVersion},
	} {
		if _, err := decodeMeta(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := decodeMeta(appendMeta(nil, nodeMeta{Proto: 99})); errors.Is(err, ErrMetaMalformed) {
		t.Error("a version mismatch must not read as malformed")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(appendMeta(nil, nodeMeta{Zone: "eu-1a", Region: "eu", Boot: 9, Proto: ProtocolVersion}))
	f.Add([]byte{metaMagicV1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrMetaMalformed) && !errors.Is(err, ErrMetaVersion) {
				t.Fatalf("unmarked error %v", err)
			}
			return
		}
		again, err := decodeMeta(appendMeta(nil, m))
		if err != nil || again != m {
			t.Fatalf("re-encoding %+v decoded as %+v, %v", m, again, err)
		}
	})
}
