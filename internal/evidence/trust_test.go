package evidence

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

// trustTestKey is a key pair for tests, with its registration.
type trustTestKey struct {
	priv crypto.Signer
	tk   TrustedKey
}

func trustNewEd25519(t testing.TB, name string, seed byte) trustTestKey {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytesOf(seed, ed25519.SeedSize))
	return trustTestKey{priv: priv, tk: trustRegister(t, name, priv.Public())}
}

func trustNewP256(t testing.TB, name string) trustTestKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return trustTestKey{priv: priv, tk: trustRegister(t, name, priv.Public())}
}

func trustRegister(t testing.TB, name string, pub crypto.PublicKey) TrustedKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return TrustedKey{Name: name, Key: pub, KeyID: hex.EncodeToString(sum[:])}
}

func (k trustTestKey) pem(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// sign signs msg as DSSE does: ed25519 over msg, ECDSA (ASN.1) over
// SHA-256 of msg; raw selects r||s for ECDSA.
func (k trustTestKey) sign(t testing.TB, msg []byte, raw bool) []byte {
	t.Helper()
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(p, msg)
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(msg)
		if raw {
			r, s, err := ecdsa.Sign(rand.Reader, p, d[:])
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, 64)
			r.FillBytes(out[:32])
			s.FillBytes(out[32:])
			return out
		}
		sig, err := ecdsa.SignASN1(rand.Reader, p, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("unsupported key %T", k.priv)
	return nil
}

// trustStatement returns an in-toto Statement v1 about digests.
func trustStatement(t testing.TB, predicateType string, predicate any, digests ...string) []byte {
	t.Helper()
	var subj []map[string]any
	for i, d := range digests {
		subj = append(subj, map[string]any{"name": "artifact-" + string(rune('a'+i)), "digest": map[string]string{"sha256": d}})
	}
	b, err := json.Marshal(map[string]any{"_type": StatementV1, "subject": subj, "predicateType": predicateType, "predicate": predicate})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trustEnvelope signs payload with each key and returns the envelope JSON.
func trustEnvelope(t testing.TB, payloadType string, payload []byte, signers ...trustTestKey) []byte {
	t.Helper()
	type sig struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	env := struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []sig  `json:"signatures"`
	}{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []sig{}}
	for _, k := range signers {
		env.Signatures = append(env.Signatures, sig{KeyID: k.tk.KeyID, Sig: base64.StdEncoding.EncodeToString(k.sign(t, PAE(payloadType, payload), false))})
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantFormatError checks err is a *FormatError naming format and containing msg.
func wantFormatError(t *testing.T, err error, format, msg string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want a *FormatError", err, err)
	}
	if fe.Format != format || !strings.Contains(fe.Msg, msg) {
		t.Errorf("err = %q, want format %q and a message containing %q", err, format, msg)
	}
}

const (
	trustDigestA = "3f2a9c0b8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
	trustDigestB = "0000000000000000000000000000000000000000000000000000000000000001"
)
