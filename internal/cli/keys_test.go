package cli

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestParseKeys(t *testing.T) {
	k1, k2 := key(1, 32), key(2, 16)
	file := "# rotation in progress\n" + b64(k1) + "\n\n  " + base64.RawStdEncoding.EncodeToString(k2) + "  \n"
	keys, err := parseKeys([]byte(file))
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Fatalf("%v %v", keys, err)
	}
	for name, bad := range map[string]string{
		"empty":      "",
		"comments":   "# nothing\n",
		"not base64": "!!!\n",
		"short":      b64(key(1, 8)) + "\n",
		"twice":      b64(k1) + "\n" + b64(k1) + "\n",
		"too many":   strings.Repeat(b64(k1)+"\n", 1) + manyKeys(maxKeys),
	} {
		if _, err := parseKeys([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := readKeyFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), maxKeyFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readKeyFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(b64(key(byte(i+10), 32)) + "\n")
	}
	return b.String()
}

// fakeKeyring records the calls and enforces the keyring's rules: no
// primary removed, no unknown key used.
type fakeKeyring struct {
	keys  [][]byte
	calls []string
	fail  string // a call that fails
}

func (f *fakeKeyring) index(k []byte) int {
	for i, x := range f.keys {
		if bytes.Equal(x, k) {
			return i
		}
	}
	return -1
}

func (f *fakeKeyring) AddKey(k []byte) error {
	f.calls = append(f.calls, "add "+keyID(k))
	if f.fail == "add" {
		return errors.New("refused")
	}
	if f.index(k) < 0 {
		f.keys = append(f.keys, k)
	}
	return nil
}

func (f *fakeKeyring) UseKey(k []byte) error {
	f.calls = append(f.calls, "use "+keyID(k))
	i := f.index(k)
	if i < 0 {
		return errors.New("no such key")
	}
	f.keys[0], f.keys[i] = f.keys[i], f.keys[0]
	return nil
}

func (f *fakeKeyring) RemoveKey(k []byte) error {
	f.calls = append(f.calls, "remove "+keyID(k))
	i := f.index(k)
	if i <= 0 {
		return errors.New("cannot remove the primary or an unknown key")
	}
	f.keys = append(f.keys[:i], f.keys[i+1:]...)
	return nil
}

func TestRotateKeysInThreeSteps(t *testing.T) {
	old, next := key(1, 32), key(2, 32)
	kr := &fakeKeyring{keys: [][]byte{old}}
	have := [][]byte{old}
	var err error
	for i, wanted := range [][][]byte{{old, next}, {next, old}, {next}} {
		if have, err = rotateKeys(kr, have, wanted); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		if !equalKeys(have, kr.keys) || !bytes.Equal(have[0], wanted[0]) || len(have) != len(wanted) {
			t.Fatalf("step %d: have %v, keyring %v", i+1, keyIDs(have), keyIDs(kr.keys))
		}
	}
	want := []string{"add " + keyID(next), "use " + keyID(next), "remove " + keyID(old)}
	if strings.Join(kr.calls, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %v, want %v", kr.calls, want)
	}

	// All at once (the old key replaced by the new one): add, use, remove.
	kr = &fakeKeyring{keys: [][]byte{old}}
	if have, err = rotateKeys(kr, [][]byte{old}, [][]byte{next}); err != nil || !equalKeys(have, [][]byte{next}) {
		t.Fatalf("one step: %v %v", keyIDs(have), err)
	}
	// A node that started without keys gets a primary.
	kr = &fakeKeyring{}
	if have, err = rotateKeys(kr, nil, [][]byte{next}); err != nil || !equalKeys(have, [][]byte{next}) || kr.calls[len(kr.calls)-1] != "use "+keyID(next) {
		t.Fatalf("from none: %v %v %v", keyIDs(have), kr.calls, err)
	}
	// A refusal stops the rotation and reports what the node has.
	kr = &fakeKeyring{keys: [][]byte{old}, fail: "add"}
	if have, err = rotateKeys(kr, [][]byte{old}, [][]byte{next}); err == nil || !equalKeys(have, [][]byte{old}) {
		t.Fatalf("refused add: %v %v", keyIDs(have), err)
	}
}

func equalKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range a {
		found := false
		for _, x := range b {
			found = found || bytes.Equal(k, x)
		}
		if !found {
			return false
		}
	}
	return true
}

func TestReloadKeysKeepsTheOldKeysOnABadFile(t *testing.T) {
	old, next := key(1, 32), key(2, 32)
	path := filepath.Join(t.TempDir(), "warp.key")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	kr := &fakeKeyring{keys: [][]byte{old}}

	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	have := reloadKeys(log, kr, path, [][]byte{old})
	if !equalKeys(have, [][]byte{old}) || len(kr.calls) != 0 || !strings.Contains(logs.String(), "cannot reload keys") {
		t.Fatalf("bad file: have %v, calls %v, log %s", keyIDs(have), kr.calls, logs.String())
	}
	if err := os.WriteFile(path, []byte(b64(next)+"\n"+b64(old)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	have = reloadKeys(log, kr, path, have)
	if !bytes.Equal(have[0], next) || len(have) != 2 || !strings.Contains(logs.String(), "keys reloaded") {
		t.Fatalf("good file: have %v, log %s", keyIDs(have), logs.String())
	}
	if strings.Contains(logs.String(), b64(next)) {
		t.Fatal("a key was written to the log")
	}
}
