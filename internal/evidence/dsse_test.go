package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestPAE(t *testing.T) {
	t.Parallel()
	// The example from the DSSE protocol specification.
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
	if got := string(PAE("t", nil)); got != "DSSEv1 1 t 0 " {
		t.Errorf("PAE of an empty body = %q", got)
	}
}

func TestVerifyEnvelope(t *testing.T) {
	t.Parallel()
	ed := trustNewEd25519(t, "ci-ed", 1)
	ec := trustNewP256(t, "ci-ec")
	stranger := trustNewEd25519(t, "stranger", 2)
	payload := trustStatement(t, SLSAProvenanceV1, nil, trustDigestA)
	pae := PAE(InTotoPayloadType, payload)
	sig := func(k trustTestKey, raw bool) EnvelopeSignature {
		return EnvelopeSignature{KeyID: k.tk.KeyID, Sig: k.sign(t, pae, raw)}
	}
	registered := []TrustedKey{ed.tk, ec.tk}
	tests := []struct {
		name       string
		env        Envelope
		keys       []TrustedKey
		wantSigner string
	}{
		{"ed25519", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(ed, false)}}, registered, "ci-ed"},
		{"ecdsa asn1", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(ec, false)}}, registered, "ci-ec"},
		{"ecdsa raw r||s", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(ec, true)}}, registered, "ci-ec"},
		{"second signature verifies", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(stranger, false), sig(ec, false)}}, registered, "ci-ec"},
		{"keyid hint is only a hint", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{{KeyID: ed.tk.KeyID, Sig: ec.sign(t, pae, false)}}}, registered, "ci-ec"},
		{"payload modified", Envelope{InTotoPayloadType, bytes.Replace(payload, []byte("3f2a"), []byte("3f2b"), 1), []EnvelopeSignature{sig(ed, false)}}, registered, ""},
		{"payloadType changed", Envelope{"application/json", payload, []EnvelopeSignature{sig(ed, false), sig(ec, false)}}, registered, ""},
		{"unregistered key", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(stranger, false)}}, registered, ""},
		{"no keys", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(ed, false)}}, nil, ""},
		{"ed25519 signature checked with the ecdsa key only", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{sig(ed, false)}}, []TrustedKey{ec.tk}, ""},
		{"garbage signature", Envelope{InTotoPayloadType, payload, []EnvelopeSignature{{Sig: []byte("xx")}}}, registered, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			signer, ok, err := VerifyEnvelope(&tt.env, tt.keys)
			if err != nil {
				t.Fatalf("VerifyEnvelope: %v", err)
			}
			if ok != (tt.wantSigner != "") || signer != tt.wantSigner {
				t.Errorf("VerifyEnvelope = %q, %v; want %q", signer, ok, tt.wantSigner)
			}
		})
	}
}

func TestVerifyEnvelopeMalformed(t *testing.T) {
	t.Parallel()
	ed := trustNewEd25519(t, "ci", 1)
	keys := []TrustedKey{ed.tk}
	tests := []struct {
		name string
		env  *Envelope
		msg  string
	}{
		{"nil", nil, "no envelope"},
		{"no payload type", &Envelope{Payload: []byte("x"), Signatures: []EnvelopeSignature{{Sig: []byte("s")}}}, "payloadType is empty"},
		{"no signatures", &Envelope{PayloadType: "t", Payload: []byte("x")}, "signatures are missing"},
		{"empty signature", &Envelope{PayloadType: "t", Payload: []byte("x"), Signatures: []EnvelopeSignature{{KeyID: "k"}}}, "signatures[0].sig is empty"},
		{"too many signatures", &Envelope{PayloadType: "t", Payload: []byte("x"), Signatures: make([]EnvelopeSignature, MaxSignatures+1)}, "17 signatures; the limit is 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ok, err := VerifyEnvelope(tt.env, keys)
			if ok {
				t.Error("ok = true for a malformed envelope")
			}
			wantFormatError(t, err, "DSSE envelope", tt.msg)
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	t.Parallel()
	ed := trustNewEd25519(t, "ci", 1)
	payload := []byte(`{"hello":"world"}`)
	doc := trustEnvelope(t, InTotoPayloadType, payload, ed)
	env, err := ParseEnvelope(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != InTotoPayloadType || string(env.Payload) != string(payload) || len(env.Signatures) != 1 || env.Signatures[0].KeyID != ed.tk.KeyID {
		t.Fatalf("ParseEnvelope = %+v", env)
	}
	if signer, ok, err := VerifyEnvelope(env, []TrustedKey{ed.tk}); err != nil || !ok || signer != "ci" {
		t.Errorf("VerifyEnvelope(parsed) = %q, %v, %v", signer, ok, err)
	}

	// URL-safe base64, as the DSSE reference implementation accepts.
	odd := []byte{0xfb, 0xff, 0xfe}
	url := `{"payloadType":"t","payload":"` + base64.URLEncoding.EncodeToString(odd) + `","signatures":[{"sig":"` + base64.URLEncoding.EncodeToString(odd) + `"}]}`
	env, err = ParseEnvelope(strings.NewReader(url))
	if err != nil || !bytes.Equal(env.Payload, odd) || !bytes.Equal(env.Signatures[0].Sig, odd) {
		t.Errorf("URL-safe base64: %+v, %v", env, err)
	}
}

func TestParseEnvelopeBadInput(t *testing.T) {
	t.Parallel()
	ed := trustNewEd25519(t, "ci", 1)
	good := string(trustEnvelope(t, InTotoPayloadType, []byte(`{"a":1}`), ed))
	var m map[string]any
	if err := json.Unmarshal([]byte(good), &m); err != nil {
		t.Fatal(err)
	}
	payloadB64 := m["payload"].(string)
	sigB64 := m["signatures"].([]any)[0].(map[string]any)["sig"].(string)
	manySigs := `{"payloadType":"t","payload":"eA==","signatures":[` + strings.Repeat(`{"sig":"eA=="},`, 16) + `{"sig":"eA=="}]}`
	tests := []struct{ name, in, msg string }{
		{"empty", "", "document is empty"},
		{"not json", "<xml/>", "invalid JSON at byte 1"},
		{"truncated json", good[:len(good)/2], "document is truncated"},
		{"trailing data", good + "{}", "unexpected data after the JSON document"},
		{"array", "[]", "document is a JSON array, want an object"},
		{"no payloadType", `{"payload":"eA==","signatures":[{"sig":"eA=="}]}`, "payloadType is missing"},
		{"payloadType number", `{"payloadType":1}`, "payloadType is a JSON number, want a string"},
		{"no payload", `{"payloadType":"t","signatures":[{"sig":"eA=="}]}`, "payload is missing"},
		{"no signatures", `{"payloadType":"t","payload":"eA=="}`, "signatures are missing"},
		{"empty signatures", `{"payloadType":"t","payload":"eA==","signatures":[]}`, "signatures are missing"},
		{"too many signatures", manySigs, "17 signatures; the limit is 16"},
		{"truncated payload base64", strings.Replace(good, payloadB64, payloadB64[:len(payloadB64)-3], 1), "payload is not valid base64"},
		{"truncated signature base64", strings.Replace(good, sigB64, sigB64[:len(sigB64)-3], 1), "signatures[0].sig is not valid base64"},
		{"signature missing", `{"payloadType":"t","payload":"eA==","signatures":[{"keyid":"k"}]}`, "signatures[0].sig is missing"},
		{"huge signature", `{"payloadType":"t","payload":"eA==","signatures":[{"sig":"` + strings.Repeat("A", 2048) + `"}]}`, "signatures[0].sig is 2048 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseEnvelope(strings.NewReader(tt.in))
			wantFormatError(t, err, "DSSE envelope", tt.msg)
		})
	}
}

func TestParseEnvelopeLimits(t *testing.T) {
	t.Parallel()
	// A payload one byte over the limit is rejected, one at the limit is not.
	for _, n := range []int{MaxPayloadBytes, MaxPayloadBytes + 1} {
		doc := `{"payloadType":"t","payload":"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `","signatures":[{"sig":"eA=="}]}`
		_, err := ParseEnvelope(strings.NewReader(doc))
		if n == MaxPayloadBytes && err != nil {
			t.Errorf("payload of %d bytes: %v", n, err)
		}
		if n > MaxPayloadBytes {
			wantFormatError(t, err, "DSSE envelope", "16 MiB")
		}
	}
	// The document itself is capped before it is decoded.
	_, err := ParseEnvelope(strings.NewReader(`{"payloadType":"t","x":"` + strings.Repeat(" ", MaxEnvelopeBytes) + `"}`))
	wantFormatError(t, err, "DSSE envelope", "document is over the")
}

func TestIsEnvelope(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		` {"payloadType":"x"}`:                      true,
		`<testsuites/>`:                             false,
		`{"version":"2.1.0","runs":[]}`:             false,
		`mode: set`:                                 false,
		`["payloadType"]`:                           false,
		`{"payload": "` + strings.Repeat("A", 8192): true, // keys sorted: payloadType comes last
		`{"kind":"uat","role":"sre"}`:               false,
		"\ufeff{\n \"payloadType\": \"t\"}":         true,
	} {
		if got := IsEnvelope([]byte(in)); got != want {
			t.Errorf("IsEnvelope(%q) = %v, want %v", in, got, want)
		}
	}
}
