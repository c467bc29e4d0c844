package evidence

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/airlock-dev/airlock/internal/keys"
)

// trustGoldenInput returns the input and registered keys of a golden file.
func trustGoldenInput(t *testing.T, name string) ([]byte, []TrustedKey) {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var input []byte
	var ks []TrustedKey
	for _, f := range ar.Files {
		switch {
		case f.Name == "input":
			input = f.Data
		case strings.HasPrefix(f.Name, "key/"):
			pub, _, id, err := keys.ParsePublicKey(f.Data)
			if err != nil {
				t.Fatal(err)
			}
			ks = append(ks, TrustedKey{Name: strings.TrimSuffix(strings.TrimPrefix(f.Name, "key/"), ".pub"), Key: pub, KeyID: id})
		}
	}
	return input, ks
}

// TestTrustDispatch checks the attestation, signature and sign-off parsers
// are registered and sniffed, and that the dispatcher's parsers (which
// have no keys) never report a document verified.
func TestTrustDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ    Type
		golden string
		format string
		fact   string
	}{
		{Attestation, "attestation/slsa-v1-p256.txtar", "dsse-intoto", "attestation.verified"},
		{Signature, "signature/message-signature-public-key.txtar", "sigstore-bundle", "signature.verified"},
		{Signoff, "signoff/uat-business-owner.txtar", "airlock-signoff", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			t.Parallel()
			input, _ := trustGoldenInput(t, tt.golden)
			rep, err := Parse(tt.typ, bytes.NewReader(input), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Type != tt.typ || rep.Format != tt.format {
				t.Errorf("Parse = %s/%s, want %s/%s", rep.Type, rep.Format, tt.typ, tt.format)
			}
			if tt.fact != "" && rep.Facts[tt.fact] != false {
				t.Errorf("%s = %v without keys, want false", tt.fact, rep.Facts[tt.fact])
			}
			if f := Formats(tt.typ); len(f) != 1 || f[0] != tt.format {
				t.Errorf("Formats(%s) = %v", tt.typ, f)
			}
		})
	}
}

// TestSignedJUnitEndToEnd follows a JUnit file signed by make-envelope.sh
// through Unwrap and the JUnit parser: the result is trusted tests evidence
// bound to the artifact digest, and the bare envelope is not mistaken for
// a tests report.
func TestSignedJUnitEndToEnd(t *testing.T) {
	t.Parallel()
	input, ks := trustGoldenInput(t, "attestation/unwrap-junit-ed25519.txtar")
	w, err := UnwrapEnvelope(bytes.NewReader(input), ks)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Trust.Trusted || w.Trust.Signer != "github-actions-shop" || w.Type != Tests {
		t.Fatalf("UnwrapEnvelope = %+v", w)
	}
	rep, err := ParseFormat(w.Type, w.Format, bytes.NewReader(w.Content), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts["tests.total"] != 13.0 || rep.Facts["tests.failed"] != 0.0 {
		t.Errorf("inner JUnit facts = %v, want 13 tests, 0 failed", rep.Facts)
	}
	if len(w.Subjects) != 1 || w.Subjects[0] != "sha256:07b1c8960763ccd4f4d821aa24ba5e4df30e8d5fd984ace68b664c9f25b81bb9" {
		t.Errorf("subjects = %v", w.Subjects)
	}

	_, err = Parse(Tests, bytes.NewReader(input), Options{})
	if err == nil || !strings.Contains(err.Error(), "dsse-intoto (attestation evidence)") {
		t.Errorf("Parse(tests, envelope) = %v, want it to say the document looks like an attestation", err)
	}
}
