package evidence

// DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse)
// reading and offline verification against registered keys.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// Limits of a DSSE envelope.
const (
	// MaxPayloadBytes bounds the decoded payload of an envelope.
	MaxPayloadBytes = 16 << 20
	// MaxSignatures bounds the signatures of an envelope.
	MaxSignatures = 16
	// MaxEnvelopeBytes bounds the envelope document: a base64 payload of
	// MaxPayloadBytes plus room for the signatures.
	MaxEnvelopeBytes = MaxPayloadBytes/3*4 + 1<<20

	dsseMaxSigBytes   = 1 << 10 // an ed25519 or P-256 signature is under 80 bytes
	dsseMaxKeyIDBytes = 1 << 10
)

// dsseFormat names the format in errors.
const dsseFormat = "DSSE envelope"

// Envelope is a parsed DSSE envelope. Payload and signatures are decoded
// from base64.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  []EnvelopeSignature
}

// EnvelopeSignature is one signature of an envelope. KeyID is the signer's
// unauthenticated hint; it may be empty.
type EnvelopeSignature struct {
	KeyID string
	Sig   []byte
}

// TrustedKey is a registered public key that may make evidence trusted.
// Key is an ed25519.PublicKey or an *ecdsa.PublicKey on P-256 (what
// keys.ParsePublicKey returns); keys of other types never verify anything.
// KeyID is the hex sha256 of the DER public key; when empty it is computed.
type TrustedKey struct {
	Name  string
	Key   crypto.PublicKey
	KeyID string
}

// Trust is the outcome of verifying a signed document against the
// registered keys. Trusted is true only when a signature verified; Signer
// and KeyID then name the key. Reason says why, for people.
type Trust struct {
	Trusted bool   `json:"trusted"`
	Signer  string `json:"signer,omitempty"`
	KeyID   string `json:"keyID,omitempty"`
	Reason  string `json:"reason"`
}

type dsseJSON struct {
	PayloadType *string `json:"payloadType"`
	Payload     *string `json:"payload"`
	Signatures  []struct {
		KeyID *string `json:"keyid"`
		Sig   *string `json:"sig"`
	} `json:"signatures"`
}

// IsEnvelope reports whether head, the start of a document, looks like a
// DSSE envelope: a JSON object with a "payloadType" or "payload" member near
// the top. Writers that sort keys (Go maps, jq -S) put the long "payload"
// first and "payloadType" far beyond any sniffing window, so either name
// counts. It is a cheap sniff, not a validation.
func IsEnvelope(head []byte) bool {
	h := bytes.TrimLeft(head, " \t\r\n\ufeff")
	return len(h) > 0 && h[0] == '{' && bytes.Contains(head, []byte(`"payload`))
}

// ParseEnvelope reads a DSSE envelope of at most MaxEnvelopeBytes:
// {"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"
// (base64)}]}. Standard and URL-safe base64 are accepted, with padding, as
// the DSSE reference implementation does. An envelope without signatures,
// with more than MaxSignatures, or with a payload over MaxPayloadBytes is a
// *FormatError.
func ParseEnvelope(r io.Reader) (*Envelope, error) {
	data, err := trustReadAll(r, MaxEnvelopeBytes, dsseFormat)
	if err != nil {
		return nil, err
	}
	return parseEnvelopeBytes(data)
}

func parseEnvelopeBytes(data []byte) (*Envelope, error) {
	var raw dsseJSON
	if err := trustUnmarshal(data, &raw, dsseFormat); err != nil {
		return nil, err
	}
	return raw.envelope()
}

func (raw *dsseJSON) envelope() (*Envelope, error) {
	switch {
	case raw.PayloadType == nil:
		return nil, Errorf(dsseFormat, "payloadType is missing")
	case *raw.PayloadType == "":
		return nil, Errorf(dsseFormat, "payloadType is empty; in-toto statements use %q", InTotoPayloadType)
	case len(*raw.PayloadType) > 256:
		return nil, Errorf(dsseFormat, "payloadType is %d bytes long; the limit is 256", len(*raw.PayloadType))
	case raw.Payload == nil:
		return nil, Errorf(dsseFormat, "payload is missing")
	case len(*raw.Payload) > base64.StdEncoding.EncodedLen(MaxPayloadBytes):
		return nil, Errorf(dsseFormat, "payload is over the %d MiB limit", MaxPayloadBytes>>20)
	case len(raw.Signatures) == 0:
		return nil, Errorf(dsseFormat, "signatures are missing; an unsigned envelope proves nothing")
	case len(raw.Signatures) > MaxSignatures:
		return nil, Errorf(dsseFormat, "%d signatures; the limit is %d", len(raw.Signatures), MaxSignatures)
	}
	payload, err := dsseBase64(*raw.Payload)
	if err != nil {
		return nil, Errorf(dsseFormat, "payload is not valid base64: %v", err)
	}
	if len(payload) > MaxPayloadBytes {
		return nil, Errorf(dsseFormat, "payload is %d bytes; the limit is %d MiB", len(payload), MaxPayloadBytes>>20)
	}
	env := &Envelope{PayloadType: *raw.PayloadType, Payload: payload}
	for i, s := range raw.Signatures {
		if s.Sig == nil || *s.Sig == "" {
			return nil, Errorf(dsseFormat, "signatures[%d].sig is missing", i)
		}
		if len(*s.Sig) > dsseMaxSigBytes {
			return nil, Errorf(dsseFormat, "signatures[%d].sig is %d bytes; no supported signature is that long", i, len(*s.Sig))
		}
		sig, err := dsseBase64(*s.Sig)
		if err != nil {
			return nil, Errorf(dsseFormat, "signatures[%d].sig is not valid base64: %v", i, err)
		}
		kid := ""
		if s.KeyID != nil {
			kid = *s.KeyID
		}
		if len(kid) > dsseMaxKeyIDBytes {
			return nil, Errorf(dsseFormat, "signatures[%d].keyid is %d bytes; the limit is %d", i, len(kid), dsseMaxKeyIDBytes)
		}
		env.Signatures = append(env.Signatures, EnvelopeSignature{KeyID: kid, Sig: sig})
	}
	return env, nil
}

// dsseBase64 decodes standard or URL-safe padded base64.
func dsseBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		return b, nil
	}
	if b, err2 := base64.URLEncoding.DecodeString(s); err2 == nil {
		return b, nil
	}
	return nil, err
}

// PAE is DSSE's pre-authentication encoding, the bytes a signature covers:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII
// decimal.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payloadType) + len(payload) + 32)
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// VerifyEnvelope checks env's signatures against keys and returns the name
// of the first registered key that verifies one of them. ed25519 keys
// verify over the PAE; ECDSA P-256 keys verify over SHA-256 of the PAE,
// with the signature ASN.1 DER encoded (what cosign and sigstore emit) or
// raw r||s (IEEE P1363, which sigstore also accepts). A signature's keyid
// is only a hint: every key is tried.
//
// ok is false with a nil error when the envelope is well formed but no
// signature verifies against a registered key; the evidence is then
// stored untrusted. err is a *FormatError for a malformed envelope.
func VerifyEnvelope(env *Envelope, keys []TrustedKey) (signer string, ok bool, err error) {
	tk, ok, err := verifyEnvelope(env, keys)
	if tk != nil {
		signer = tk.Name
	}
	return signer, ok, err
}

func verifyEnvelope(env *Envelope, keys []TrustedKey) (*TrustedKey, bool, error) {
	switch {
	case env == nil:
		return nil, false, Errorf(dsseFormat, "no envelope")
	case env.PayloadType == "":
		return nil, false, Errorf(dsseFormat, "payloadType is empty")
	case len(env.Payload) > MaxPayloadBytes:
		return nil, false, Errorf(dsseFormat, "payload is %d bytes; the limit is %d MiB", len(env.Payload), MaxPayloadBytes>>20)
	case len(env.Signatures) == 0:
		return nil, false, Errorf(dsseFormat, "signatures are missing; an unsigned envelope proves nothing")
	case len(env.Signatures) > MaxSignatures:
		return nil, false, Errorf(dsseFormat, "%d signatures; the limit is %d", len(env.Signatures), MaxSignatures)
	}
	for i, s := range env.Signatures {
		if len(s.Sig) == 0 {
			return nil, false, Errorf(dsseFormat, "signatures[%d].sig is empty", i)
		}
	}
	pae := PAE(env.PayloadType, env.Payload)
	digest := sha256.Sum256(pae)
	for _, s := range env.Signatures {
		for _, k := range trustKeyOrder(keys, s.KeyID) {
			if trustVerify(k.Key, pae, digest[:], s.Sig) {
				return k, true, nil
			}
		}
	}
	return nil, false, nil
}

// trustKeyOrder returns keys whose name or key id equals hint first, then
// the rest, so the hinted key is tried first but no key is skipped.
func trustKeyOrder(keys []TrustedKey, hint string) []*TrustedKey {
	out := make([]*TrustedKey, 0, len(keys))
	for i := range keys {
		if hint != "" && (keys[i].KeyID == hint || keys[i].Name == hint) {
			out = append(out, &keys[i])
		}
	}
	for i := range keys {
		if hint == "" || (keys[i].KeyID != hint && keys[i].Name != hint) {
			out = append(out, &keys[i])
		}
	}
	return out
}

// trustVerify checks sig by key over msg (ed25519) or over digest, the
// SHA-256 of msg (ECDSA P-256, ASN.1 or r||s).
func trustVerify(key crypto.PublicKey, msg, digest, sig []byte) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		return trustVerifyECDSA(k, digest, sig)
	}
	return false
}

func trustVerifyECDSA(k *ecdsa.PublicKey, digest, sig []byte) bool {
	if k == nil || k.Curve != elliptic.P256() {
		return false
	}
	if ecdsa.VerifyASN1(k, digest, sig) {
		return true
	}
	if len(sig) == 64 {
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// trustKeyID returns k.KeyID, or computes it (hex sha256 of the DER key).
func trustKeyID(k *TrustedKey) string {
	if k.KeyID != "" {
		return k.KeyID
	}
	der, err := x509.MarshalPKIXPublicKey(k.Key)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// trustOf describes the outcome of a verification.
func trustOf(k *TrustedKey, ok bool, nkeys int, hints []string) Trust {
	if ok {
		id := trustKeyID(k)
		return Trust{Trusted: true, Signer: k.Name, KeyID: id, Reason: fmt.Sprintf("signature verified with registered key %q (key id %s)", k.Name, trustShort(id))}
	}
	if nkeys == 0 {
		return Trust{Reason: "no keys are registered, so no signature can be verified; register the CI key with `airlock key add`"}
	}
	why := fmt.Sprintf("no signature verifies against any of the %d registered keys", nkeys)
	var named []string
	for _, h := range hints {
		if h != "" {
			named = append(named, strconv.Quote(trustShort(h)))
		}
	}
	if len(named) > 0 {
		why += " (signatures name key ids " + strings.Join(named, ", ") + ")"
	}
	return Trust{Reason: why + "; the document was changed after signing or was signed by an unregistered key"}
}

func trustShort(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// trustReadAll reads r to the end, failing with a *FormatError past limit.
func trustReadAll(r io.Reader, limit int64, format string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, Errorf(format, "read: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, Errorf(format, "document is over the %s limit", trustSize(limit))
	}
	return data, nil
}

func trustSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// trustUnmarshal decodes one JSON value from data into v, translating
// errors into a *FormatError and rejecting trailing data.
func trustUnmarshal(data []byte, v any, format string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return trustJSONError(err, data, format)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(format, "unexpected data after the JSON document")
	}
	return nil
}

func trustJSONError(err error, data []byte, format string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return Errorf(format, "document is empty")
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Errorf(format, "document is truncated")
	case errors.As(err, &se):
		return Errorf(format, "invalid JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "document"
		}
		return Errorf(format, "%s is a JSON %s, want %s", field, te.Value, trustGoType(te.Type.String()))
	}
	return Errorf(format, "%v", err)
}

func trustGoType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]") && t != "[]uint8":
		return "an array"
	case strings.HasPrefix(t, "map[") || strings.Contains(t, "struct") || strings.HasPrefix(t, "evidence.") || strings.HasPrefix(t, "*evidence."):
		return "an object"
	case strings.Contains(t, "string"):
		return "a string"
	case strings.Contains(t, "bool"):
		return "a boolean"
	case strings.Contains(t, "int"), strings.Contains(t, "float"):
		return "a number"
	}
	return t
}
