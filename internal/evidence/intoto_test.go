package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseAttestationStatements(t *testing.T) {
	t.Parallel()
	ci := trustNewEd25519(t, "ci", 1)
	keys := []TrustedKey{ci.tk}
	stmt := func(typ string, subject any, predicateType string, predicate any) []byte {
		m := map[string]any{"_type": typ, "subject": subject, "predicateType": predicateType}
		if predicate != nil {
			m["predicate"] = predicate
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sub := func(digests ...map[string]string) []map[string]any {
		var out []map[string]any
		for _, d := range digests {
			out = append(out, map[string]any{"name": "a", "digest": d})
		}
		return out
	}
	upper := strings.ToUpper(trustDigestA)
	tests := []struct {
		name      string
		payload   []byte
		wantErr   string // format: message
		subjects  []string
		wantFacts map[string]any
	}{
		{
			name:     "custom predicate, duplicate and upper-case subjects",
			payload:  stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}, map[string]string{"sha256": upper}, map[string]string{"sha256": trustDigestB, "sha512": "ab"}), "https://example.com/test-result/v1", map[string]any{"x": 1}),
			subjects: []string{"sha256:" + trustDigestA, "sha256:" + trustDigestB},
			wantFacts: map[string]any{"attestation.predicate_type": "https://example.com/test-result/v1", "attestation.subjects": 2.0,
				"attestation.statement_version": "v1", "attestation.verified": true, "attestation.signer": "ci", "attestation.signatures": 1.0},
		},
		{
			name:      "statement v0.1 without predicate",
			payload:   stmt(StatementV01, sub(map[string]string{"sha256": trustDigestA}), "https://example.com/p", nil),
			subjects:  []string{"sha256:" + trustDigestA},
			wantFacts: map[string]any{"attestation.statement_version": "v0.1"},
		},
		{name: "no _type", payload: []byte(`{"subject":[],"predicateType":"p"}`), wantErr: "in-toto Statement: _type is missing"},
		{name: "link", payload: stmt("link", sub(map[string]string{"sha256": trustDigestA}), "p", nil), wantErr: `in-toto Statement: _type is "link"`},
		{name: "no subject", payload: stmt(StatementV1, []any{}, "p", nil), wantErr: "in-toto Statement: subject is missing or empty"},
		{name: "no predicateType", payload: stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}), "", nil), wantErr: "in-toto Statement: predicateType is missing"},
		{name: "subject without digest", payload: stmt(StatementV1, sub(map[string]string{}), "p", nil), wantErr: `in-toto Statement: subject[0] ("a") has no digest`},
		{name: "only sha512", payload: stmt(StatementV1, sub(map[string]string{"sha512": "ab"}), "p", nil), wantErr: "in-toto Statement: no subject has a sha256 digest"},
		{name: "short digest", payload: stmt(StatementV1, sub(map[string]string{"sha256": "abc"}), "p", nil), wantErr: "digest.sha256 has 3 characters"},
		{name: "non-hex digest", payload: stmt(StatementV1, sub(map[string]string{"sha256": strings.Repeat("g", 64)}), "p", nil), wantErr: `digest.sha256 contains 'g'`},
		{name: "slsa v1 without builder", payload: stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}), SLSAProvenanceV1, map[string]any{"buildDefinition": map[string]any{"buildType": "b"}}), wantErr: "SLSA provenance v1: predicate.runDetails.builder.id is missing"},
		{name: "slsa v1 without predicate", payload: stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}), SLSAProvenanceV1, nil), wantErr: "SLSA provenance v1: predicate is missing"},
		{name: "slsa v1 predicate not an object", payload: stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}), SLSAProvenanceV1, []int{1}), wantErr: "SLSA provenance v1: document is a JSON array, want an object"},
		{name: "slsa v0.2 without buildType", payload: stmt(StatementV1, sub(map[string]string{"sha256": trustDigestA}), SLSAProvenanceV02, map[string]any{"builder": map[string]any{"id": "b"}}), wantErr: "SLSA provenance v0.2: predicate.buildType is missing"},
		{name: "payload not json", payload: []byte("hello"), wantErr: "in-toto Statement: invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := trustEnvelope(t, InTotoPayloadType, tt.payload, ci)
			rep, trust, err := ParseAttestation(bytes.NewReader(doc), keys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if _, ok := err.(*FormatError); !ok {
					t.Errorf("err is %T, want *FormatError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !trust.Trusted || trust.Signer != "ci" || trust.KeyID != ci.tk.KeyID {
				t.Errorf("trust = %+v", trust)
			}
			if rep.Type != Attestation || rep.Format != "dsse-intoto" {
				t.Errorf("type, format = %s, %s", rep.Type, rep.Format)
			}
			if strings.Join(rep.Subjects, ",") != strings.Join(tt.subjects, ",") {
				t.Errorf("subjects = %v, want %v", rep.Subjects, tt.subjects)
			}
			for k, v := range tt.wantFacts {
				if rep.Facts[k] != v {
					t.Errorf("fact %s = %#v, want %#v", k, rep.Facts[k], v)
				}
			}
		})
	}
}

// evidenceStatement returns a signed envelope wrapping content.
func evidenceEnvelope(t *testing.T, k trustTestKey, predicate map[string]any, digests ...string) []byte {
	t.Helper()
	return trustEnvelope(t, InTotoPayloadType, trustStatement(t, EvidencePredicateType, predicate, digests...), k)
}

func TestUnwrap(t *testing.T) {
	t.Parallel()
	ci := trustNewEd25519(t, "github-actions-shop", 1)
	laptop := trustNewEd25519(t, "laptop", 9)
	keys := []TrustedKey{ci.tk}
	junit := `<testsuites><testsuite name="x" tests="1"><testcase name="a"/></testsuite></testsuites>`

	// A UTF-8 report, signed by the registered key, bound to one digest.
	doc := evidenceEnvelope(t, ci, map[string]any{"type": "tests", "format": "junit", "content": junit}, trustDigestA)
	inner, subjects, trust, wrapped, err := Unwrap(bytes.NewReader(doc), keys)
	if err != nil || !wrapped {
		t.Fatalf("Unwrap = wrapped %v, %v", wrapped, err)
	}
	if string(inner) != junit || len(subjects) != 1 || subjects[0] != "sha256:"+trustDigestA || !trust.Trusted || trust.Signer != "github-actions-shop" {
		t.Errorf("Unwrap = %q, %v, %+v", inner, subjects, trust)
	}
	w, err := UnwrapEnvelope(bytes.NewReader(doc), keys)
	if err != nil || w.Type != Tests || w.Format != "junit" {
		t.Errorf("UnwrapEnvelope = %+v, %v", w, err)
	}

	// A binary report in base64, signed by a laptop key: unwrapped, untrusted.
	bin := []byte{0, 1, 2, 0xff}
	doc = evidenceEnvelope(t, laptop, map[string]any{"type": "coverage", "encoding": "base64", "content": base64.StdEncoding.EncodeToString(bin)}, trustDigestA)
	inner, _, trust, wrapped, err = Unwrap(bytes.NewReader(doc), keys)
	if err != nil || !wrapped || !bytes.Equal(inner, bin) || trust.Trusted || trust.Signer != "" {
		t.Errorf("laptop-signed: %v, %v, %+v, %v", inner, wrapped, trust, err)
	}

	// Not an envelope: wrapped is false, nothing else is set.
	inner, subjects, trust, wrapped, err = Unwrap(strings.NewReader(junit), keys)
	if err != nil || wrapped || inner != nil || subjects != nil || trust != (Trust{}) {
		t.Errorf("plain JUnit: %q, %v, %+v, %v, %v", inner, subjects, trust, wrapped, err)
	}
	if w, err := UnwrapEnvelope(strings.NewReader(""), keys); w != nil || err != nil {
		t.Errorf("empty document: %+v, %v", w, err)
	}
}

func TestUnwrapBadPredicate(t *testing.T) {
	t.Parallel()
	ci := trustNewEd25519(t, "ci", 1)
	tests := []struct {
		name string
		pred map[string]any
		msg  string
	}{
		{"no predicate", nil, "predicate is missing"},
		{"no type", map[string]any{"content": "x"}, "predicate.type is missing"},
		{"unknown type", map[string]any{"type": "vibes", "content": "x"}, `predicate.type: unknown evidence type "vibes"`},
		{"wrapped attestation", map[string]any{"type": "attestation", "content": "x"}, `predicate.type "attestation" cannot be wrapped`},
		{"no content", map[string]any{"type": "tests"}, "predicate.content is missing"},
		{"bad encoding", map[string]any{"type": "tests", "content": "x", "encoding": "gzip"}, `predicate.encoding is "gzip"`},
		{"bad base64", map[string]any{"type": "tests", "content": "eA=", "encoding": "base64"}, "predicate.content is not valid base64"},
		{"unknown field", map[string]any{"type": "tests", "content": "x", "suite": "unit"}, `predicate has unknown field "suite"`},
		{"content not a string", map[string]any{"type": "tests", "content": 1}, "content is a JSON number, want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var pred any
			if tt.pred != nil {
				pred = tt.pred
			}
			doc := trustEnvelope(t, InTotoPayloadType, trustStatement(t, EvidencePredicateType, pred, trustDigestA), ci)
			_, _, _, wrapped, err := Unwrap(bytes.NewReader(doc), []TrustedKey{ci.tk})
			if wrapped {
				t.Error("wrapped = true with an error")
			}
			wantFormatError(t, err, "airlock evidence predicate", tt.msg)
		})
	}
}
