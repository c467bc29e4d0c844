package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/airlock-dev/airlock/internal/keys"
)

var updateTrustGolden = flag.Bool("update-trust", false, "rewrite the want.json of testdata/{attestation,signature,signoff}/*.txtar")

// TestTrustGolden runs every testdata/{attestation,signature,signoff}/*.txtar:
// "input" is the document, "key/NAME.pub" are the registered keys, and
// "want.json" the expected report and trust (or error). An "unwrap" file
// runs UnwrapEnvelope instead of the type's parser.
func TestTrustGolden(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"attestation", "signature", "signoff"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txtar"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no golden files in testdata/%s", dir)
		}
		for _, file := range files {
			t.Run(dir+"/"+strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
				t.Parallel()
				trustGoldenFile(t, dir, file)
			})
		}
	}
}

func trustGoldenFile(t *testing.T, dir, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var input, want []byte
	var haveInput, unwrap bool
	var registered []TrustedKey
	for _, f := range ar.Files {
		switch {
		case f.Name == "input":
			input, haveInput = f.Data, true
		case f.Name == "want.json":
			want = f.Data
		case f.Name == "unwrap":
			unwrap = true
		case strings.HasPrefix(f.Name, "key/"):
			pub, _, id, err := keys.ParsePublicKey(f.Data)
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			registered = append(registered, TrustedKey{Name: strings.TrimSuffix(strings.TrimPrefix(f.Name, "key/"), ".pub"), Key: pub, KeyID: id})
		default:
			t.Fatalf("unknown section %q", f.Name)
		}
	}
	if !haveInput {
		t.Fatal("no input section")
	}
	got := map[string]any{}
	var runErr error
	switch {
	case unwrap:
		w, err := UnwrapEnvelope(bytes.NewReader(input), registered)
		runErr = err
		if w != nil {
			sum := sha256.Sum256(w.Content)
			got["wrapped"] = map[string]any{"type": w.Type, "format": w.Format, "content_bytes": len(w.Content), "content_sha256": hex.EncodeToString(sum[:]), "subjects": w.Subjects, "trust": w.Trust}
		} else if err == nil {
			got["wrapped"] = nil
		}
	case dir == "attestation":
		rep, trust, err := ParseAttestation(bytes.NewReader(input), registered)
		runErr = err
		if err == nil {
			got["report"], got["trust"] = rep, trust
		}
	case dir == "signature":
		rep, trust, err := ParseSignature(bytes.NewReader(input), registered)
		runErr = err
		if err == nil {
			got["report"], got["trust"] = rep, trust
		}
	case dir == "signoff":
		rep, err := ParseSignoff(bytes.NewReader(input), Options{})
		runErr = err
		if err == nil {
			got["report"] = rep
		}
	}
	if runErr != nil {
		got["error"] = runErr.Error()
		if _, ok := runErr.(*FormatError); !ok {
			t.Errorf("error %v is a %T, want a *FormatError", runErr, runErr)
		}
	}
	gotJSON, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	gotJSON = append(gotJSON, '\n')
	if *updateTrustGolden {
		trustSetSection(ar, "want.json", gotJSON)
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want == nil {
		t.Fatalf("no want.json section; run go test -run TestTrustGolden -update-trust and review the result")
	}
	if !bytes.Equal(trustCanonical(t, want), trustCanonical(t, gotJSON)) {
		t.Errorf("result differs from want.json\ngot:\n%s\nwant:\n%s", gotJSON, want)
	}
}

func trustSetSection(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
	sort.SliceStable(ar.Files, func(i, j int) bool { return ar.Files[i].Name == "input" && ar.Files[j].Name != "input" })
}

func trustCanonical(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("want.json: %v", err)
	}
	out, _ := json.Marshal(v)
	return out
}

// TestInTotoGolangEnvelopeVerifies checks the signature of a DSSE envelope
// written by in-toto-golang verifies with the key it was made with: our
// PAE and ed25519 verification agree with a real implementation.
func TestInTotoGolangEnvelopeVerifies(t *testing.T) {
	t.Parallel()
	ar, err := txtar.ParseFile(filepath.Join("testdata", "attestation", "in-toto-golang-link.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	var input, pemKey []byte
	for _, f := range ar.Files {
		switch f.Name {
		case "input":
			input = f.Data
		case "key/ci.pub":
			pemKey = f.Data
		}
	}
	pub, _, id, err := keys.ParsePublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(bytes.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	if signer, ok, err := VerifyEnvelope(env, []TrustedKey{{Name: "ci", Key: pub, KeyID: id}}); err != nil || !ok || signer != "ci" {
		t.Fatalf("VerifyEnvelope = %q, %v, %v; want ci, true", signer, ok, err)
	}
	env.Payload = append(env.Payload[:len(env.Payload)-1:len(env.Payload)-1], ' ')
	if _, ok, _ := VerifyEnvelope(env, []TrustedKey{{Name: "ci", Key: pub, KeyID: id}}); ok {
		t.Error("a modified payload verified")
	}
}
