// Package seal encrypts secrets airlock must hold for a while — an issued
// credential until its requester collects it, a break-glass credential
// until it is opened — with NaCl secretbox (XSalsa20-Poly1305) under a
// 32-byte key kept in a file outside the database. A sealed value is bound
// to what it belongs to (its associated name), so a value copied onto
// another object does not open.
package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
)

// Prefix marks a sealed value.
const Prefix = "sealed:v1:"

// MaxPlaintext bounds what may be sealed.
const MaxPlaintext = 64 << 10

// Sealer seals and opens values with one key.
type Sealer struct{ key [32]byte }

// New returns a Sealer over key.
func New(key [32]byte) *Sealer { return &Sealer{key: key} }

// LoadOrCreateKey reads the 32-byte key at path, creating it (mode 0600)
// when it does not exist.
func LoadOrCreateKey(path string) (*Sealer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(k[:]) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create seal key: %w", err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return New(k), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seal key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("seal key %s is not 32 bytes of base64", path)
	}
	var k [32]byte
	copy(k[:], raw)
	return New(k), nil
}

// Seal encrypts plaintext for the object named name.
func (s *Sealer) Seal(name string, plaintext []byte) (string, error) {
	if len(plaintext) > MaxPlaintext {
		return "", fmt.Errorf("seal: %d bytes; at most %d may be sealed", len(plaintext), MaxPlaintext)
	}
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	key := s.bound(name)
	out := secretbox.Seal(nonce[:], plaintext, &nonce, &key)
	return Prefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal made for the object named name.
func (s *Sealer) Open(name, sealed string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return nil, errors.New("seal: not a sealed value")
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < 24+secretbox.Overhead {
		return nil, errors.New("seal: malformed sealed value")
	}
	var nonce [24]byte
	copy(nonce[:], raw[:24])
	key := s.bound(name)
	out, ok := secretbox.Open(nil, raw[24:], &nonce, &key)
	if !ok {
		return nil, errors.New("seal: the value does not open with this key for " + name)
	}
	return out, nil
}

// bound derives the key for one object name.
func (s *Sealer) bound(name string) [32]byte {
	h := sha256.New()
	h.Write([]byte("airlock.seal.v1\x00"))
	h.Write(s.key[:])
	h.Write([]byte(name))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}
