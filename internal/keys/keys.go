// Package keys defines the Key kind: the public key of a CI identity whose
// signatures make evidence trusted. Keys are not applied from files; an
// admin adds one with `airlock key add NAME --public-key FILE`, and the
// server derives the algorithm and key id from the PEM with NewSpec.
//
// Everything here is pure.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"unicode"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Kind is the name of the resource kind this package owns.
const Kind = "Key"

// The algorithms a registered key may use.
const (
	Ed25519   = "ed25519"
	ECDSAP256 = "ecdsa-p256"
)

// Accepted describes the keys airlock accepts, for error messages.
const Accepted = "ed25519 or ECDSA P-256 (a PEM \"PUBLIC KEY\" block in PKIX form, as `openssl pkey -pubout` or `cosign generate-key-pair` write)"

// MaxPEMBytes bounds a public key file; an ed25519 or P-256 PEM is under 200 bytes.
const MaxPEMBytes = 8 << 10

const maxDescription = 1024

// Spec is a registered public key. Algorithm and KeyID are derived from
// PublicKey (NewSpec fills them); Validate rejects a spec whose derived
// fields disagree with the key.
type Spec struct {
	// PublicKey is a PEM "PUBLIC KEY" block (PKIX, DER inside).
	PublicKey string `json:"publicKey"`
	// Algorithm is "ed25519" or "ecdsa-p256".
	Algorithm string `json:"algorithm"`
	// KeyID is the lower-case hex sha256 of the DER public key.
	KeyID string `json:"keyID"`
	// Identity is the CI identity the key belongs to, e.g. "github-actions-shop".
	Identity    string `json:"identity"`
	Description string `json:"description,omitempty"`
}

// ParsePublicKey reads one PEM "PUBLIC KEY" block and returns the key, its
// algorithm ("ed25519" or "ecdsa-p256") and its key id (hex sha256 of the
// DER). RSA keys, other curves and anything else are rejected with an error
// naming what is accepted. Text after the block is an error, so a file with
// two keys is not silently cut to the first.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, string, string, error) {
	if len(pemBytes) > MaxPEMBytes {
		return nil, "", "", fmt.Errorf("public key: the file is %d bytes; a PEM public key is under %d bytes; use %s", len(pemBytes), MaxPEMBytes, Accepted)
	}
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", "", fmt.Errorf("public key: no PEM block found; use %s", Accepted)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, "", "", fmt.Errorf("public key: unexpected data after the PEM %q block; give exactly one key", block.Type)
	}
	if block.Type != "PUBLIC KEY" {
		hint := ""
		if strings.Contains(block.Type, "PRIVATE") {
			hint = " (this is a private key: never register it; register the public half, e.g. `openssl pkey -in key.pem -pubout`)"
		}
		return nil, "", "", fmt.Errorf("public key: PEM block is %q, want \"PUBLIC KEY\"%s; use %s", block.Type, hint, Accepted)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", "", fmt.Errorf("public key: cannot parse the PKIX key: %v; use %s", err, Accepted)
	}
	sum := sha256.Sum256(block.Bytes)
	id := hex.EncodeToString(sum[:])
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return k, Ed25519, id, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", "", fmt.Errorf("public key: ECDSA curve %s is not accepted; use %s", k.Curve.Params().Name, Accepted)
		}
		return k, ECDSAP256, id, nil
	case *rsa.PublicKey:
		return nil, "", "", fmt.Errorf("public key: RSA keys are not accepted; use %s", Accepted)
	}
	return nil, "", "", fmt.Errorf("public key: %T keys are not accepted; use %s", pub, Accepted)
}

// NewSpec builds the spec of a key from its PEM, deriving Algorithm and
// KeyID, and validates it.
func NewSpec(publicKeyPEM []byte, identity, description string) (Spec, error) {
	_, alg, id, err := ParsePublicKey(publicKeyPEM)
	if err != nil {
		return Spec{}, resource.Errorf("spec.publicKey", "%v", err)
	}
	s := Spec{PublicKey: string(publicKeyPEM), Algorithm: alg, KeyID: id, Identity: identity, Description: description}
	return s, Validate(s)
}

// Validate checks a key spec: the PEM parses as an accepted key, Algorithm
// and KeyID equal what the key derives, Identity is a valid name and
// Description is short plain text. The error is a *resource.PathError.
func Validate(s Spec) error {
	_, alg, id, err := ParsePublicKey([]byte(s.PublicKey))
	if err != nil {
		return resource.Errorf("spec.publicKey", "%v", err)
	}
	if s.Algorithm != alg {
		return resource.Errorf("spec.algorithm", "algorithm %q does not match the public key, which is %s; the server derives this field, leave it to `airlock key add`", s.Algorithm, alg)
	}
	if s.KeyID != id {
		return resource.Errorf("spec.keyID", "key id %q does not match the public key, whose id (sha256 of the DER key) is %s; the server derives this field", s.KeyID, id)
	}
	if err := resource.ValidateName(s.Identity); err != nil {
		return resource.Errorf("spec.identity", "identity %v (the CI identity that holds the private key, e.g. github-actions-shop)", err)
	}
	if len(s.Description) > maxDescription {
		return resource.Errorf("spec.description", "description is %d characters long; the limit is %d", len(s.Description), maxDescription)
	}
	if strings.IndexFunc(s.Description, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
		return resource.Errorf("spec.description", "description contains control characters")
	}
	return nil
}

// Register adds the Key kind to s. Keys are not declarative: only the
// admin-only key API creates them.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    Kind,
		Plural:  "keys",
		Aliases: []string{"key"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(_ *resource.Object, spec any) error {
			k, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("key: spec has type %T, want *keys.Spec", spec)
			}
			return Validate(*k)
		},
	})
}
