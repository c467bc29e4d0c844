package audit

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testSigner returns a signer with a fixed key, so failures reproduce.
func testSigner(seed byte) *Signer {
	return NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
}

func TestCheckpointSignVerify(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	c := s.Sign(42, "sha256:head", t0)
	if c.Size != 42 || c.Head != "sha256:head" || !c.Time.Equal(t0) || c.KeyID != KeyID(s.PublicKey()) {
		t.Fatalf("Sign returned %+v", c)
	}
	if !VerifyCheckpoint(s.PublicKey(), c) {
		t.Fatal("a fresh checkpoint does not verify")
	}
	tampered := map[string]func(c *Checkpoint){
		"size":      func(c *Checkpoint) { c.Size++ },
		"head":      func(c *Checkpoint) { c.Head = "sha256:other" },
		"time":      func(c *Checkpoint) { c.Time = c.Time.Add(1) },
		"signature": func(c *Checkpoint) { c.Signature = append([]byte(nil), c.Signature...); c.Signature[0] ^= 1 },
		"short sig": func(c *Checkpoint) { c.Signature = c.Signature[:10] },
		"no sig":    func(c *Checkpoint) { c.Signature = nil },
	}
	for name, change := range tampered {
		cc := c
		change(&cc)
		if VerifyCheckpoint(s.PublicKey(), cc) {
			t.Errorf("a checkpoint with a changed %s still verifies", name)
		}
	}
	if VerifyCheckpoint(testSigner(2).PublicKey(), c) {
		t.Error("a checkpoint verifies under another key")
	}
	if VerifyCheckpoint(nil, c) || VerifyCheckpoint(ed25519.PublicKey{1, 2, 3}, c) {
		t.Error("a checkpoint verifies under a malformed key")
	}
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	a, b := KeyID(testSigner(1).PublicKey()), KeyID(testSigner(2).PublicKey())
	if len(a) != 16 || a == b {
		t.Fatalf("KeyID = %q and %q; want 16 hex digits, different per key", a, b)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %v; want 0600", mode)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("reloading the key file gives another key")
	}
	// No temporary files are left behind.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("key directory holds %d files; want 1", len(ents))
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pubOnly := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubOnly, EncodePublicKey(testSigner(1).PublicKey()), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	tests := map[string]struct{ path, want string }{
		"public key":  {pubOnly, `expected a PEM "PRIVATE KEY" block`},
		"empty file":  {empty, `expected a PEM "PRIVATE KEY" block`},
		"bad DER":     {garbage, "audit signing key"},
		"missing dir": {filepath.Join(dir, "nope", "audit.key"), "create audit signing key"},
	}
	for name, tt := range tests {
		_, err := LoadOrCreateKey(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want it to contain %q", name, err, tt.want)
		}
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.key")
	const n = 8
	keys := make(chan ed25519.PrivateKey, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			k, err := LoadOrCreateKey(path)
			keys <- k
			errs <- err
		}()
	}
	var first ed25519.PrivateKey
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		k := <-keys
		if first == nil {
			first = k
		} else if !first.Equal(k) {
			t.Fatal("two processes starting together got different keys")
		}
	}
}

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	t.Parallel()
	pub := testSigner(3).PublicKey()
	pemBytes := EncodePublicKey(pub)
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("EncodePublicKey = %q", pemBytes)
	}
	got, err := ParsePublicKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Fatal("ParsePublicKey(EncodePublicKey(k)) != k")
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"private key": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"bad DER":     []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("%s: ParsePublicKey accepted it", name)
		}
	}
}
