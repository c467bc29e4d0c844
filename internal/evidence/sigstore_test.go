package evidence

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// trustBundle builds a Sigstore bundle JSON from parts; nil parts are left out.
func trustBundle(t *testing.T, mediaType string, material map[string]any, content map[string]any) []byte {
	t.Helper()
	b := map[string]any{"mediaType": mediaType, "verificationMaterial": material}
	for k, v := range content {
		b[k] = v
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func trustMessageSignature(digest, sig []byte) map[string]any {
	return map[string]any{"messageSignature": map[string]any{
		"messageDigest": map[string]any{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(digest)},
		"signature":     base64.StdEncoding.EncodeToString(sig),
	}}
}

func trustCert(t *testing.T, k trustTestKey) []byte {
	t.Helper()
	u, _ := url.Parse("https://github.com/example/shop/.github/workflows/release.yml@refs/heads/main")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigstore"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1, 0), URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	ec := trustNewP256(t, "ci-ec")
	ed := trustNewEd25519(t, "ci-ed", 3)
	artifact := []byte("shop 1.4.0")
	digest := sha256.Sum256(artifact)
	subject := "sha256:" + hex.EncodeToString(digest[:])
	pk := map[string]any{"publicKey": map[string]any{"hint": ""}}
	chain := func(k trustTestKey) map[string]any {
		return map[string]any{"x509CertificateChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(trustCert(t, k))}}}}
	}
	tests := []struct {
		name        string
		doc         []byte
		keys        []TrustedKey
		wantSigner  string
		wantReason  string
		wantSubject string
	}{
		{"ecdsa raw r||s", trustBundle(t, SigstoreBundleV03, pk, trustMessageSignature(digest[:], ec.sign(t, artifact, true))), []TrustedKey{ed.tk, ec.tk}, "ci-ec", "", subject},
		{"ecdsa via chain v0.1", trustBundle(t, SigstoreBundleV01, chain(ec), trustMessageSignature(digest[:], ec.sign(t, artifact, false))), []TrustedKey{ed.tk, ec.tk}, "ci-ec", "", subject},
		{"certificate of another key", trustBundle(t, SigstoreBundleV03, chain(ed), trustMessageSignature(digest[:], ec.sign(t, artifact, false))), []TrustedKey{ed.tk, ec.tk}, "", "no signature verifies", subject},
		{"ed25519 message signature", trustBundle(t, SigstoreBundleV03, pk, trustMessageSignature(digest[:], ed.sign(t, artifact, false))), []TrustedKey{ed.tk}, "", "ed25519 message signatures sign the whole artifact", subject},
		{"no keys", trustBundle(t, SigstoreBundleV03, pk, trustMessageSignature(digest[:], ec.sign(t, artifact, false))), nil, "", "no keys are registered", subject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, trust, err := ParseSignature(bytes.NewReader(tt.doc), tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			if trust.Trusted != (tt.wantSigner != "") || trust.Signer != tt.wantSigner || !strings.Contains(trust.Reason, tt.wantReason) {
				t.Errorf("trust = %+v, want signer %q, reason containing %q", trust, tt.wantSigner, tt.wantReason)
			}
			if rep.Facts["signature.verified"] != trust.Trusted || rep.Facts["signature.signer"] != trust.Signer {
				t.Errorf("facts %v disagree with trust %+v", rep.Facts, trust)
			}
			if len(rep.Subjects) != 1 || rep.Subjects[0] != tt.wantSubject {
				t.Errorf("subjects = %v, want %s", rep.Subjects, tt.wantSubject)
			}
		})
	}
}

func TestParseSignatureBadInput(t *testing.T) {
	t.Parallel()
	ec := trustNewP256(t, "ci")
	d := sha256.Sum256([]byte("a"))
	pk := map[string]any{"publicKey": map[string]any{"hint": ""}}
	ms := trustMessageSignature(d[:], ec.sign(t, []byte("a"), false))
	env := map[string]any{"dsseEnvelope": map[string]any{"payloadType": InTotoPayloadType, "payload": "e30=", "signatures": []any{map[string]any{"sig": "eA=="}}}}
	both := map[string]any{"messageSignature": ms["messageSignature"], "dsseEnvelope": env["dsseEnvelope"]}
	msWith := func(digest map[string]any, sig string) map[string]any {
		return map[string]any{"messageSignature": map[string]any{"messageDigest": digest, "signature": sig}}
	}
	goodSig := ms["messageSignature"].(map[string]any)["signature"].(string)
	tlog := func(n int, entry any) map[string]any {
		entries := make([]any, n)
		for i := range entries {
			entries[i] = entry
		}
		return map[string]any{"publicKey": map[string]any{}, "tlogEntries": entries}
	}
	tests := []struct {
		name string
		doc  string
		msg  string
	}{
		{"empty", "", "document is empty"},
		{"truncated", string(trustBundle(t, SigstoreBundleV03, pk, ms))[:100], "document is truncated"},
		{"no media type", `{"verificationMaterial":{}}`, "mediaType is missing"},
		{"no material", string(trustBundle(t, SigstoreBundleV03, nil, ms)), "verificationMaterial is missing"},
		{"two materials", string(trustBundle(t, SigstoreBundleV03, map[string]any{"publicKey": map[string]any{}, "certificate": map[string]any{"rawBytes": "eA=="}}, ms)), "more than one of publicKey"},
		{"both contents", string(trustBundle(t, SigstoreBundleV03, pk, both)), "both messageSignature and dsseEnvelope"},
		{"no digest", string(trustBundle(t, SigstoreBundleV03, pk, msWith(nil, goodSig))), "messageSignature.messageDigest is missing"},
		{"no algorithm", string(trustBundle(t, SigstoreBundleV03, pk, msWith(map[string]any{"digest": "eA=="}, goodSig))), "algorithm is missing"},
		{"short digest", string(trustBundle(t, SigstoreBundleV03, pk, msWith(map[string]any{"algorithm": 1, "digest": "eA=="}, goodSig))), "digest is 1 bytes; a SHA2_256 digest is 32"},
		{"digest not base64", string(trustBundle(t, SigstoreBundleV03, pk, msWith(map[string]any{"algorithm": "SHA2_256", "digest": "!!"}, goodSig))), "digest is not valid base64"},
		{"no signature", string(trustBundle(t, SigstoreBundleV03, pk, msWith(map[string]any{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(d[:])}, ""))), "messageSignature.signature is missing"},
		{"bad certificate", string(trustBundle(t, SigstoreBundleV03, map[string]any{"certificate": map[string]any{"rawBytes": "eA=="}}, ms)), "certificate does not parse"},
		{"empty chain", string(trustBundle(t, SigstoreBundleV02, map[string]any{"x509CertificateChain": map[string]any{"certificates": []any{}}}, ms)), "x509CertificateChain has no certificates"},
		{"tlog entry not an object", string(trustBundle(t, SigstoreBundleV03, tlog(1, "x"), ms)), "tlogEntries[0] is not an object"},
		{"too many tlog entries", string(trustBundle(t, SigstoreBundleV03, tlog(65, map[string]any{}), ms)), "65 tlogEntries; the limit is 64"},
		{"dsse without signatures", string(trustBundle(t, SigstoreBundleV03, pk, map[string]any{"dsseEnvelope": map[string]any{"payloadType": InTotoPayloadType, "payload": "e30="}})), "signatures are missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseSignature(strings.NewReader(tt.doc), []TrustedKey{ec.tk})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.msg)
			}
			if _, ok := err.(*FormatError); !ok {
				t.Errorf("err is %T, want *FormatError", err)
			}
		})
	}
}
