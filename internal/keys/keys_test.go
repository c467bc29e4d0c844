package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/resource"
)

func readKey(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The key ids below were computed by openssl, independently of this code:
// openssl pkey -pubin -in FILE -outform DER | sha256sum
func TestParsePublicKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, alg, id, wantErr string
	}{
		{file: "ed25519.pub", alg: Ed25519, id: "9960954e958a0f2c421ed8f3ba85062d25851e05e2c788fede9278998ab244ca"},
		{file: "p256.pub", alg: ECDSAP256, id: "2d834552b6bd7254f05281e810087aaa5b952abab3f413ec4709c54d47544682"},
		{file: "p384.pub", wantErr: "ECDSA curve P-384 is not accepted; use ed25519 or ECDSA P-256"},
		{file: "rsa.pub", wantErr: "RSA keys are not accepted; use ed25519 or ECDSA P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			key, alg, id, err := ParsePublicKey(readKey(t, tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg != tt.alg || id != tt.id {
				t.Errorf("alg, id = %s, %s; want %s, %s", alg, id, tt.alg, tt.id)
			}
			switch alg {
			case Ed25519:
				if _, ok := key.(ed25519.PublicKey); !ok {
					t.Errorf("key is %T, want ed25519.PublicKey", key)
				}
			case ECDSAP256:
				if _, ok := key.(*ecdsa.PublicKey); !ok {
					t.Errorf("key is %T, want *ecdsa.PublicKey", key)
				}
			}
		})
	}
}

func TestParsePublicKeyBadInput(t *testing.T) {
	t.Parallel()
	ed := string(readKey(t, "ed25519.pub"))
	tests := []struct{ name, in, wantErr string }{
		{"empty", "", "no PEM block found"},
		{"not pem", "ssh-ed25519 AAAAC3Nza...", "no PEM block found"},
		{"private key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBb1\n-----END PRIVATE KEY-----\n", "this is a private key"},
		{"certificate", strings.ReplaceAll(ed, "PUBLIC KEY", "CERTIFICATE"), `PEM block is "CERTIFICATE", want "PUBLIC KEY"`},
		{"two keys", ed + ed, "unexpected data after the PEM"},
		{"bad der", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot parse the PKIX key"},
		{"huge", strings.Repeat("x", MaxPEMBytes+1), "the file is 8193 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := ParsePublicKey([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "public key: ") {
				t.Errorf("err %q does not name the format", err)
			}
		})
	}
}

func TestNewSpecAndValidate(t *testing.T) {
	t.Parallel()
	pem := readKey(t, "p256.pub")
	s, err := NewSpec(pem, "github-actions-shop", "release builds of shop")
	if err != nil {
		t.Fatal(err)
	}
	if s.Algorithm != ECDSAP256 || s.KeyID != "2d834552b6bd7254f05281e810087aaa5b952abab3f413ec4709c54d47544682" || s.Identity != "github-actions-shop" {
		t.Fatalf("NewSpec = %+v", s)
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		path   string
		msg    string
	}{
		{"valid", func(*Spec) {}, "", ""},
		{"algorithm disagrees", func(s *Spec) { s.Algorithm = Ed25519 }, "spec.algorithm", "which is ecdsa-p256"},
		{"key id disagrees", func(s *Spec) { s.KeyID = strings.Repeat("0", 64) }, "spec.keyID", "whose id (sha256 of the DER key) is 2d83"},
		{"key id missing", func(s *Spec) { s.KeyID = "" }, "spec.keyID", "does not match"},
		{"rsa", func(s *Spec) { s.PublicKey = string(readKey(t, "rsa.pub")) }, "spec.publicKey", "RSA keys are not accepted"},
		{"no identity", func(s *Spec) { s.Identity = "" }, "spec.identity", "name is required"},
		{"bad identity", func(s *Spec) { s.Identity = "GitHub Actions" }, "spec.identity", "is invalid"},
		{"long description", func(s *Spec) { s.Description = strings.Repeat("d", 1025) }, "spec.description", "limit is 1024"},
		{"control description", func(s *Spec) { s.Description = "a\x1bb" }, "spec.description", "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := s
			tt.mutate(&c)
			err := Validate(c)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var pe *resource.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *resource.PathError at %s", err, tt.path)
			}
			if pe.Path != tt.path || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("err at %s %q, want at %s containing %q", pe.Path, pe.Msg, tt.path, tt.msg)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	k, ok := s.Lookup("keys")
	if !ok {
		t.Fatal("keys not registered")
	}
	if k.Name != "Key" || k.Declarative {
		t.Errorf("kind = %s declarative=%v, want Key, not declarative", k.Name, k.Declarative)
	}
	if _, ok := s.Lookup("key"); !ok {
		t.Error("alias key not registered")
	}
	spec := k.NewSpec().(*Spec)
	*spec, _ = NewSpec(readKey(t, "ed25519.pub"), "ci", "")
	if err := k.Validate(&resource.Object{}, spec); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
	spec.KeyID = "x"
	if err := k.Validate(&resource.Object{}, spec); err == nil {
		t.Error("Validate accepted a wrong key id")
	}
}
