package evidence

// Sigstore bundles (github.com/sigstore/protobuf-specs, JSON form), verified
// offline against registered keys. Transparency-log entries and timestamps
// are counted, not verified: airlock trusts a bundle because a registered
// key signed it, never because of Fulcio or Rekor.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var _ = register(Signature, FormatSigstoreBundle, IsSigstoreBundle, parseSignatureNoKeys)

// Sigstore bundle media types airlock reads.
const (
	SigstoreBundleV03    = "application/vnd.dev.sigstore.bundle.v0.3+json"
	SigstoreBundleV03Alt = "application/vnd.dev.sigstore.bundle+json;version=0.3"
	SigstoreBundleV02    = "application/vnd.dev.sigstore.bundle+json;version=0.2"
	SigstoreBundleV01    = "application/vnd.dev.sigstore.bundle+json;version=0.1"
)

// FormatSigstoreBundle is the Report.Format of signatures.
const FormatSigstoreBundle = "sigstore-bundle"

const (
	sigstoreFormat       = "Sigstore bundle"
	sigstoreMaxCerts     = 10
	sigstoreMaxCertBytes = 64 << 10
	sigstoreMaxTlog      = 64
)

type sigstoreRawBytes struct {
	RawBytes string `json:"rawBytes"`
}

type sigstoreBundleJSON struct {
	MediaType            *string `json:"mediaType"`
	VerificationMaterial *struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		X509CertificateChain *struct {
			Certificates []sigstoreRawBytes `json:"certificates"`
		} `json:"x509CertificateChain"`
		Certificate               *sigstoreRawBytes `json:"certificate"`
		TlogEntries               []json.RawMessage `json:"tlogEntries"`
		TimestampVerificationData *struct {
			RFC3161Timestamps []json.RawMessage `json:"rfc3161Timestamps"`
		} `json:"timestampVerificationData"`
	} `json:"verificationMaterial"`
	MessageSignature *struct {
		MessageDigest *struct {
			Algorithm json.RawMessage `json:"algorithm"`
			Digest    string          `json:"digest"`
		} `json:"messageDigest"`
		Signature string `json:"signature"`
	} `json:"messageSignature"`
	DSSEEnvelope *dsseJSON `json:"dsseEnvelope"`
}

// IsSigstoreBundle reports whether head, the start of a document, looks
// like a Sigstore bundle. It is a cheap sniff, not a validation.
func IsSigstoreBundle(head []byte) bool {
	return bytes.Contains(head, []byte(`"mediaType"`)) && bytes.Contains(head, []byte("application/vnd.dev.sigstore.bundle"))
}

// ParseSignature reads a Sigstore bundle (media type v0.1, v0.2 or v0.3)
// and verifies it offline against keys. The report has Type signature,
// Format "sigstore-bundle", and Subjects the signed message digest
// ("sha256:<hex>") or, for a DSSE bundle, the statement's subjects.
//
// A bundle with a public-key hint is verified against every registered
// key; a bundle with a certificate only with the registered key whose DER
// equals the certificate's key (no Fulcio chain, Rekor entry or timestamp
// is checked). ECDSA P-256 message signatures are verified over the
// message digest; ed25519 message signatures cover the whole artifact,
// which the bundle does not carry, so they are reported unverified. A
// well-formed bundle that does not verify is not an error: Trust.Trusted
// is false. Malformed input is a *FormatError.
func ParseSignature(r io.Reader, keys []TrustedKey) (*Report, Trust, error) {
	data, err := trustReadAll(r, MaxEnvelopeBytes, sigstoreFormat)
	if err != nil {
		return nil, Trust{}, err
	}
	var b sigstoreBundleJSON
	if err := trustUnmarshal(data, &b, sigstoreFormat); err != nil {
		return nil, Trust{}, err
	}
	rep := &Report{Type: Signature, Format: FormatSigstoreBundle, Facts: map[string]any{}}
	if b.MediaType == nil {
		return nil, Trust{}, Errorf(sigstoreFormat, "mediaType is missing; want %q", SigstoreBundleV03)
	}
	switch *b.MediaType {
	case SigstoreBundleV03, SigstoreBundleV03Alt, SigstoreBundleV02, SigstoreBundleV01:
	default:
		return nil, Trust{}, Errorf(sigstoreFormat, "mediaType %q is not a bundle version airlock reads; want %q (or version 0.1, 0.2)", trustClip(*b.MediaType), SigstoreBundleV03)
	}
	rep.Facts["signature.media_type"] = *b.MediaType
	vm := b.VerificationMaterial
	if vm == nil {
		return nil, Trust{}, Errorf(sigstoreFormat, "verificationMaterial is missing")
	}
	if len(vm.TlogEntries) > sigstoreMaxTlog {
		return nil, Trust{}, Errorf(sigstoreFormat, "%d tlogEntries; the limit is %d", len(vm.TlogEntries), sigstoreMaxTlog)
	}
	for i, e := range vm.TlogEntries {
		if t := bytes.TrimSpace(e); len(t) == 0 || t[0] != '{' {
			return nil, Trust{}, Errorf(sigstoreFormat, "verificationMaterial.tlogEntries[%d] is not an object", i)
		}
	}
	rep.Facts["signature.tlog_entries"] = float64(len(vm.TlogEntries))
	ts := 0
	if vm.TimestampVerificationData != nil {
		ts = len(vm.TimestampVerificationData.RFC3161Timestamps)
	}
	rep.Facts["signature.timestamps"] = float64(ts)

	// Which registered keys may have signed: all of them for a public-key
	// bundle, the one matching the certificate's key otherwise.
	var candidates []TrustedKey
	var certNote string
	materials := 0
	if vm.PublicKey != nil {
		materials++
		rep.Facts["signature.verification_material"] = "public-key"
		rep.Facts["signature.key_hint"] = vm.PublicKey.Hint
		for _, k := range trustKeyOrder(keys, vm.PublicKey.Hint) {
			candidates = append(candidates, *k)
		}
	}
	var certs []sigstoreRawBytes
	if vm.X509CertificateChain != nil {
		materials++
		certs = vm.X509CertificateChain.Certificates
		if len(certs) == 0 {
			return nil, Trust{}, Errorf(sigstoreFormat, "verificationMaterial.x509CertificateChain has no certificates")
		}
	}
	if vm.Certificate != nil {
		materials++
		certs = []sigstoreRawBytes{*vm.Certificate}
	}
	switch {
	case materials == 0:
		return nil, Trust{}, Errorf(sigstoreFormat, "verificationMaterial has no publicKey, certificate or x509CertificateChain")
	case materials > 1:
		return nil, Trust{}, Errorf(sigstoreFormat, "verificationMaterial has more than one of publicKey, certificate and x509CertificateChain")
	case len(certs) > sigstoreMaxCerts:
		return nil, Trust{}, Errorf(sigstoreFormat, "%d certificates; the limit is %d", len(certs), sigstoreMaxCerts)
	}
	if len(certs) > 0 {
		leaf, err := sigstoreLeaf(certs)
		if err != nil {
			return nil, Trust{}, err
		}
		rep.Facts["signature.verification_material"] = "certificate"
		rep.Facts["signature.certificate_identity"] = sigstoreIdentity(leaf)
		for _, k := range keys {
			der, err := x509.MarshalPKIXPublicKey(k.Key)
			if err == nil && bytes.Equal(der, leaf.RawSubjectPublicKeyInfo) {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			certNote = "the certificate's public key is not a registered key (airlock does not verify Fulcio certificates or Rekor entries; register the signing key to trust its bundles)"
		}
	}

	var trust Trust
	switch {
	case b.MessageSignature != nil && b.DSSEEnvelope != nil:
		return nil, Trust{}, Errorf(sigstoreFormat, "bundle has both messageSignature and dsseEnvelope; want one")
	case b.MessageSignature != nil:
		rep.Facts["signature.content"] = "message-signature"
		ms := b.MessageSignature
		if ms.MessageDigest == nil {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.messageDigest is missing")
		}
		if err := sigstoreAlgorithm(ms.MessageDigest.Algorithm); err != nil {
			return nil, Trust{}, err
		}
		digest, err := base64.StdEncoding.DecodeString(ms.MessageDigest.Digest)
		if err != nil {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.messageDigest.digest is not valid base64: %v", err)
		}
		if len(digest) != sha256.Size {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.messageDigest.digest is %d bytes; a SHA2_256 digest is 32", len(digest))
		}
		if ms.Signature == "" {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.signature is missing")
		}
		if len(ms.Signature) > dsseMaxSigBytes {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.signature is %d bytes; no supported signature is that long", len(ms.Signature))
		}
		sig, err := base64.StdEncoding.DecodeString(ms.Signature)
		if err != nil {
			return nil, Trust{}, Errorf(sigstoreFormat, "messageSignature.signature is not valid base64: %v", err)
		}
		rep.Subjects = []string{fmt.Sprintf("sha256:%x", digest)}
		trust = sigstoreVerifyDigest(candidates, len(keys), digest, sig)
	case b.DSSEEnvelope != nil:
		rep.Facts["signature.content"] = "dsse-envelope"
		env, err := b.DSSEEnvelope.envelope()
		if err != nil {
			return nil, Trust{}, err
		}
		st, err := parseStatement(env)
		if err != nil {
			return nil, Trust{}, err
		}
		if err := statementFacts(rep.Facts, "signature", st); err != nil {
			return nil, Trust{}, err
		}
		rep.Subjects = st.Subjects
		k, ok, err := verifyEnvelope(env, candidates)
		if err != nil {
			return nil, Trust{}, err
		}
		trust = trustOf(k, ok, len(keys), envelopeKeyIDs(env))
	default:
		return nil, Trust{}, Errorf(sigstoreFormat, "bundle has neither messageSignature nor dsseEnvelope")
	}
	if !trust.Trusted && certNote != "" && len(keys) > 0 {
		trust.Reason = certNote
	}
	trustFacts(rep.Facts, "signature", trust)
	return rep, trust, nil
}

// sigstoreAlgorithm accepts the SHA2_256 hash algorithm, by protobuf enum
// name or number.
func sigstoreAlgorithm(raw json.RawMessage) error {
	s := strings.TrimSpace(string(raw))
	switch s {
	case `"SHA2_256"`, `1`:
		return nil
	case "", "null":
		return Errorf(sigstoreFormat, "messageSignature.messageDigest.algorithm is missing; want SHA2_256")
	}
	return Errorf(sigstoreFormat, "messageSignature.messageDigest.algorithm is %s; only SHA2_256 digests can be bound to a release's sha256 digest", trustClip(s))
}

// sigstoreLeaf parses the leaf (first) certificate of a bundle.
func sigstoreLeaf(certs []sigstoreRawBytes) (*x509.Certificate, error) {
	c := certs[0]
	if c.RawBytes == "" {
		return nil, Errorf(sigstoreFormat, "certificate rawBytes is missing")
	}
	if len(c.RawBytes) > sigstoreMaxCertBytes {
		return nil, Errorf(sigstoreFormat, "certificate is %d bytes; the limit is %d KiB", len(c.RawBytes), sigstoreMaxCertBytes>>10)
	}
	der, err := base64.StdEncoding.DecodeString(c.RawBytes)
	if err != nil {
		return nil, Errorf(sigstoreFormat, "certificate rawBytes is not valid base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, Errorf(sigstoreFormat, "certificate does not parse: %v", err)
	}
	return cert, nil
}

// sigstoreIdentity is the identity a Fulcio certificate names: its first
// URI or e-mail subject alternative name. It is not verified.
func sigstoreIdentity(c *x509.Certificate) string {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	}
	return c.Subject.String()
}

// sigstoreVerifyDigest verifies a message signature over digest with the
// candidate keys.
func sigstoreVerifyDigest(candidates []TrustedKey, nkeys int, digest, sig []byte) Trust {
	sawEd25519 := false
	for i := range candidates {
		k := &candidates[i]
		switch pk := k.Key.(type) {
		case *ecdsa.PublicKey:
			if trustVerifyECDSA(pk, digest, sig) {
				return trustOf(k, true, nkeys, nil)
			}
		case ed25519.PublicKey:
			sawEd25519 = true
		}
	}
	t := trustOf(nil, false, nkeys, nil)
	if sawEd25519 {
		t.Reason += "; ed25519 message signatures sign the whole artifact, which a bundle does not carry, so they cannot be verified offline: sign with an ECDSA P-256 key, or wrap the statement in a DSSE envelope"
	}
	return t
}

// parseSignatureNoKeys is the Parser registered for Type signature: with
// no keys, signature.verified is false. The server calls ParseSignature
// with the registered keys instead.
func parseSignatureNoKeys(r io.Reader, _ Options) (*Report, error) {
	rep, _, err := ParseSignature(r, nil)
	return rep, err
}
