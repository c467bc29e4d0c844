package ingest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/keys"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/store"
)

const junit = `<testsuites><testsuite name="shop" tests="1" failures="0"><testcase name="TestA" classname="shop"/></testsuite></testsuites>`

var rel = release.Spec{App: "shop", Version: "1.4.0", Commit: "9f2c1e7", Artifact: release.Artifact{Digest: "sha256:" + strings.Repeat("ab", 32)}}

// Sign wraps a report in a DSSE envelope holding an in-toto statement with
// airlock's evidence predicate, as a CI job would.
func Sign(t *testing.T, key ed25519.PrivateKey, typ, content string, subjectHex string) []byte {
	t.Helper()
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "shop", "digest": map[string]string{"sha256": subjectHex}}},
		"predicateType": evidence.EvidencePredicateType,
		"predicate":     map[string]any{"type": typ, "content": content},
	})
	pt := "application/vnd.in-toto+json"
	sig := ed25519.Sign(key, evidence.PAE(pt, stmt))
	env, _ := json.Marshal(map[string]any{
		"payloadType": pt,
		"payload":     base64.StdEncoding.EncodeToString(stmt),
		"signatures":  []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return env
}

func trustedKey(t *testing.T, name string) (ed25519.PrivateKey, evidence.TrustedKey) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	k, _, id, err := keys.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return priv, evidence.TrustedKey{Name: name, Key: k, KeyID: id}
}

func TestTrust(t *testing.T) {
	t.Parallel()
	ciKey, ci := trustedKey(t, "github-actions-shop")
	laptopKey, _ := trustedKey(t, "laptop")
	relHex := strings.TrimPrefix(rel.Artifact.Digest, "sha256:")
	tests := []struct {
		name    string
		body    []byte
		trusted bool
		signer  string
		reason  string
		err     string
	}{
		{"unsigned", []byte(junit), false, "", "unsigned", ""},
		{"signed by a registered key", Sign(t, ciKey, "tests", junit, relHex), true, "github-actions-shop", "", ""},
		{"signed by an unregistered key", Sign(t, laptopKey, "tests", junit, relHex), false, "", "", ""},
		{"signed for another artifact", Sign(t, ciKey, "tests", junit, strings.Repeat("cd", 32)), false, "", "", "describes sha256:cdcd"},
		{"signed as another type", Sign(t, ciKey, "coverage", "mode: set\n", relHex), false, "", "", "declares coverage evidence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, _, err := ingest.Parse(ingest.Request{App: "shop", Version: "1.4.0", Type: evidence.Tests, Suite: evidence.Unit, Name: "tests-unit", Body: bytes.NewReader(tc.body), Size: int64(len(tc.body))}, rel, []evidence.TrustedKey{ci})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Trusted != tc.trusted || rec.Signer != tc.signer || !strings.Contains(rec.TrustReason, tc.reason) {
				t.Fatalf("trusted=%v signer=%q reason=%q", rec.Trusted, rec.Signer, rec.TrustReason)
			}
			if rec.Facts["tests.passed"] != 1.0 || rec.Format != "junit" {
				t.Fatalf("facts %v format %s", rec.Facts, rec.Format)
			}
		})
	}
}

func TestSignoffNeedsTheRole(t *testing.T) {
	t.Parallel()
	body := []byte(`{"kind":"uat","role":"business-owner","reason":"UAT passed on 2026-11-26, see UAT-12"}`)
	req := ingest.Request{App: "shop", Version: "1.4.0", Type: evidence.Signoff, Body: bytes.NewReader(body), Size: int64(len(body)), CanSignAs: func(r string) bool { return r == "sre" }}
	_, _, err := ingest.Parse(req, rel, nil)
	var me *ingest.MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "business-owner") {
		t.Fatalf("sign-off without the role: %v", err)
	}
	req.CanSignAs = func(r string) bool { return r == "business-owner" }
	rec, _, err := ingest.Parse(req, rel, nil)
	if err != nil || !rec.Trusted || rec.Facts["signoff.kind"] != "uat" {
		t.Fatalf("sign-off: %v %+v", err, rec)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	for name, req := range map[string]ingest.Request{
		"unknown type":      {App: "shop", Version: "1.4.0", Type: "vibes", Body: bytes.NewReader([]byte("x")), Size: int64(len([]byte("x")))},
		"suite on coverage": {App: "shop", Version: "1.4.0", Type: evidence.Coverage, Suite: evidence.Unit, Body: bytes.NewReader([]byte("mode: set\n")), Size: int64(len([]byte("mode: set\n")))},
		"unknown suite":     {App: "shop", Version: "1.4.0", Type: evidence.Tests, Suite: "chaos", Body: bytes.NewReader([]byte(junit)), Size: int64(len([]byte(junit)))},
		"empty":             {App: "shop", Version: "1.4.0", Type: evidence.Tests},
	} {
		// These fail before the store is touched (the service has none).
		_, err := (&ingest.Service{}).Add(t.Context(), store.Actor{Name: "ci"}, req)
		var ie *ingest.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an InvalidError", name, err)
		}
	}
	_, _, err := ingest.Parse(ingest.Request{App: "shop", Version: "1.4.0", Type: evidence.Coverage, Name: "coverage", Body: bytes.NewReader([]byte(junit)), Size: int64(len([]byte(junit)))}, rel, nil)
	var ie *ingest.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "nothing was stored") {
		t.Errorf("JUnit sent as coverage: %v", err)
	}
}
