package evidence

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/tools/txtar"

	"github.com/airlock-dev/airlock/internal/keys"
)

// trustSeeds adds the inputs of testdata/DIR/*.txtar to f's corpus and
// returns the keys registered by the first file that has any.
func trustSeeds(f *testing.F, dir string) []TrustedKey {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txtar"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	var registered []TrustedKey
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, x := range ar.Files {
			switch {
			case x.Name == "input":
				f.Add(x.Data)
			case strings.HasPrefix(x.Name, "key/"):
				pub, _, id, err := keys.ParsePublicKey(x.Data)
				if err != nil {
					f.Fatal(err)
				}
				registered = append(registered, TrustedKey{Name: x.Name, Key: pub, KeyID: id})
			}
		}
	}
	return registered
}

var trustSubjectRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// trustCheck holds for every parse result: errors are FormatErrors,
// subjects are well-formed digests, trust and facts agree.
func trustCheck(t *testing.T, rep *Report, trust Trust, err error, prefix string) {
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is %T, want *FormatError", err, err)
		}
		return
	}
	if rep == nil {
		t.Fatal("nil report without an error")
	}
	if len(rep.Subjects) == 0 {
		t.Fatal("no subjects")
	}
	for _, s := range rep.Subjects {
		if !trustSubjectRE.MatchString(s) {
			t.Fatalf("subject %q is not sha256:<64 hex>", s)
		}
	}
	if trust.Trusted != (trust.Signer != "") || rep.Facts[prefix+".verified"] != trust.Trusted {
		t.Fatalf("trust %+v disagrees with itself or the facts %v", trust, rep.Facts)
	}
}

func FuzzDSSE(f *testing.F) {
	registered := trustSeeds(f, "attestation")
	f.Add([]byte(`{"payloadType":"t","payload":"","signatures":[{"sig":"eA=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, trust, err := ParseAttestation(bytes.NewReader(data), registered)
		trustCheck(t, rep, trust, err, "attestation")
		if env, err := ParseEnvelope(bytes.NewReader(data)); err == nil {
			if _, _, err := VerifyEnvelope(env, registered); err != nil {
				t.Fatalf("a parsed envelope failed verification with an error: %v", err)
			}
		}
		w, err := UnwrapEnvelope(bytes.NewReader(data), registered)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Unwrap error %v is %T", err, err)
			}
		} else if w != nil && (len(w.Content) == 0 || len(w.Subjects) == 0) {
			t.Fatalf("wrapped report without content or subjects: %+v", w)
		}
	})
}

func FuzzSigstoreBundle(f *testing.F) {
	registered := trustSeeds(f, "signature")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, trust, err := ParseSignature(bytes.NewReader(data), registered)
		trustCheck(t, rep, trust, err, "signature")
	})
}

func FuzzSignoff(f *testing.F) {
	trustSeeds(f, "signoff")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseSignoff(bytes.NewReader(data), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, want *FormatError", err, err)
			}
			return
		}
		reason, _ := rep.Facts["signoff.reason"].(string)
		if reason == "" || utf8.RuneCountInString(reason) > MaxSignoffReason || !utf8.ValidString(reason) {
			t.Fatalf("accepted reason %q", reason)
		}
		for _, k := range []string{"signoff.kind", "signoff.role"} {
			if v, _ := rep.Facts[k].(string); v == "" {
				t.Fatalf("accepted an empty %s", k)
			}
		}
	})
}
