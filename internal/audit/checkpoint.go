package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Checkpoint is a signed statement that the log held Size entries and that
// the last of them had hash Head. Anyone holding the public key can check an
// export against it offline.
type Checkpoint struct {
	Size      int64     `json:"size"`
	Head      string    `json:"head"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"keyId"`
	Signature []byte    `json:"signature"`
}

func (c *Checkpoint) message() []byte {
	return []byte("airlock.checkpoint.v1\n" + strconv.FormatInt(c.Size, 10) + "\n" + c.Head + "\n" + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// Signer signs checkpoints with an ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner wraps a private key.
func NewSigner(key ed25519.PrivateKey) *Signer { return &Signer{key: key} }

// PublicKey returns the key that verifies this signer's checkpoints.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns a checkpoint over a log of size entries ending in head.
func (s *Signer) Sign(size int64, head string, now time.Time) Checkpoint {
	c := Checkpoint{Size: size, Head: head, Time: now.UTC(), KeyID: KeyID(s.PublicKey())}
	c.Signature = ed25519.Sign(s.key, c.message())
	return c
}

// KeyID is a short fingerprint of a public key: the first 8 bytes of its
// SHA-256 in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// VerifyCheckpoint reports whether c carries a valid signature by pub.
func VerifyCheckpoint(pub ed25519.PublicKey, c Checkpoint) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, c.message(), c.Signature)
}

// LoadOrCreateKey reads an ed25519 private key in PEM (PKCS #8) from path,
// creating one with mode 0600 if the file does not exist. The new key is
// written to a temporary file and linked into place, so a crash never
// leaves a half-written key and two processes starting together end up
// with the same key. The directory must exist.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit signing key %s: expected a PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit signing key %s: expected an ed25519 key, got %T", path, k)
	}
	return key, nil
}

// createKey writes a new key at path unless a file is already there (one
// another process created meanwhile wins).
func createKey(path string) (err error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate audit signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode audit signing key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("create audit signing key: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("create audit signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write audit signing key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write audit signing key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write audit signing key %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create audit signing key: %w", err)
	}
	return nil
}

// EncodePublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX).
func EncodePublicKey(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for ed25519
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKey reads a PEM "PUBLIC KEY" block holding an ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("expected a PEM \"PUBLIC KEY\" block (as served at /api/v1/audit/public-key)")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("expected an ed25519 public key, got %T", k)
	}
	return pub, nil
}
