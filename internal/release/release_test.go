package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/resource"
)

const (
	digest = "sha256:3f2a9c0b8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
	commit = "9fceb02d0ae598e95dc970b74767f19372d61af8"
)

func wantPathError(t *testing.T, err error, path string, msg ...string) {
	t.Helper()
	if path == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var pe *resource.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *resource.PathError at %s", err, path)
	}
	if pe.Path != path {
		t.Errorf("path = %q, want %q (message %q)", pe.Path, path, pe.Msg)
	}
	for _, m := range msg {
		if !strings.Contains(pe.Msg, m) {
			t.Errorf("message %q does not contain %q", pe.Msg, m)
		}
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	tests := []struct{ app, version, want string }{
		{"shop", "1.4.0", "shop-1.4.0"},
		{"shop", "1.4.0-rc.1+build_7", "shop-1.4.0-rc.1-build-7"},
		{"shop", "V2", "shop-v2"},
	}
	for _, tt := range tests {
		if got := Name(tt.app, tt.version); got != tt.want {
			t.Errorf("Name(%q, %q) = %q, want %q", tt.app, tt.version, got, tt.want)
		}
	}
}

func TestValidateVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v       string
		wantErr string // "" means valid
	}{
		{"1.4.0", ""},
		{"v1.4.0-rc.1+build_7", ""},
		{"2026.06.01", ""},
		{strings.Repeat("1", 64), ""},
		{"", "version is required"},
		{strings.Repeat("1", 65), "the limit is 64"},
		{".1", "starting with a letter or digit"},
		{"-1", "starting with a letter or digit"},
		{"1.0 beta", "is invalid"},
		{"1/2", "is invalid"},
	}
	for _, tt := range tests {
		err := ValidateVersion(tt.v)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateVersion(%q) = %v, want nil", tt.v, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateVersion(%q) = %v, want an error containing %q", tt.v, err, tt.wantErr)
		}
	}
}

func TestParseDigest(t *testing.T) {
	t.Parallel()
	hx := strings.TrimPrefix(digest, "sha256:")
	tests := []struct {
		in      string
		wantErr string
	}{
		{digest, ""},
		{"", "digest is required"},
		{hx, "has no algorithm"},
		{"sha512:" + hx, "only sha256 is supported"},
		{"sha256:" + hx[:63], "has 63 hex digits"},
		{"sha256:" + hx + "0", "has 65 hex digits"},
		{"sha256:" + strings.ToUpper(hx), "must be lower-case hex; write " + digest},
		{"sha256:" + hx[:63] + "g", `contains 'g'`},
	}
	for _, tt := range tests {
		got, err := ParseDigest(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != hx):
			t.Errorf("ParseDigest(%q) = %q, %v; want %q", tt.in, got, err, hx)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseDigest(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add(digest)
	f.Add("sha256:")
	f.Add("sha256:ABC")
	f.Fuzz(func(t *testing.T, s string) {
		hx, err := ParseDigest(s)
		if err != nil {
			return
		}
		if DigestPrefix+hx != s || len(hx) != 64 || strings.ToLower(hx) != hx {
			t.Fatalf("ParseDigest(%q) accepted it as %q", s, hx)
		}
	})
}

func spec() Spec {
	return Spec{App: "shop", Version: "1.4.0", Artifact: Artifact{Digest: digest, Name: "shop.tar.gz", Size: 1024}, Commit: commit, Creator: "ci"}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		edit     func(*resource.Metadata, *Spec)
		wantPath string
		wantMsg  []string
	}{
		{name: "valid"},
		{name: "matching app label", edit: func(m *resource.Metadata, _ *Spec) { m.Labels = map[string]string{"app": "shop"} }},
		{name: "short commit", edit: func(_ *resource.Metadata, s *Spec) { s.Commit = "9fceb02" }},
		{name: "build metadata in version", edit: func(m *resource.Metadata, s *Spec) { s.Version = "1.4.0+B_7"; m.Name = "shop-1.4.0-b-7" }},
		{name: "app invalid", edit: func(_ *resource.Metadata, s *Spec) { s.App = "Shop" },
			wantPath: "spec.app", wantMsg: []string{`"Shop" is invalid`}},
		{name: "app missing", edit: func(_ *resource.Metadata, s *Spec) { s.App = "" },
			wantPath: "spec.app", wantMsg: []string{"name is required"}},
		{name: "version invalid", edit: func(_ *resource.Metadata, s *Spec) { s.Version = "1.4 final" },
			wantPath: "spec.version", wantMsg: []string{`version "1.4 final" is invalid`}},
		{name: "version makes an invalid name", edit: func(m *resource.Metadata, s *Spec) { s.Version = "1.4."; m.Name = "shop-1.4." },
			wantPath: "spec.version", wantMsg: []string{`release name "shop-1.4."`, "end it with a letter or digit"}},
		{name: "version makes too long a name", edit: func(_ *resource.Metadata, s *Spec) { s.Version = strings.Repeat("1", 60) },
			wantPath: "spec.version", wantMsg: []string{"the limit is 63"}},
		{name: "digest invalid", edit: func(_ *resource.Metadata, s *Spec) { s.Artifact.Digest = "md5:abc" },
			wantPath: "spec.artifact.digest", wantMsg: []string{"only sha256"}},
		{name: "negative size", edit: func(_ *resource.Metadata, s *Spec) { s.Artifact.Size = -1 },
			wantPath: "spec.artifact.size", wantMsg: []string{"got -1"}},
		{name: "artifact name with newline", edit: func(_ *resource.Metadata, s *Spec) { s.Artifact.Name = "a\nb" },
			wantPath: "spec.artifact.name", wantMsg: []string{"control characters"}},
		{name: "commit missing", edit: func(_ *resource.Metadata, s *Spec) { s.Commit = "" },
			wantPath: "spec.commit", wantMsg: []string{"commit is required", "git rev-parse HEAD"}},
		{name: "commit too short", edit: func(_ *resource.Metadata, s *Spec) { s.Commit = "9fceb0" },
			wantPath: "spec.commit", wantMsg: []string{"7 to 40 lower-case hex"}},
		{name: "commit too long", edit: func(_ *resource.Metadata, s *Spec) { s.Commit = commit + "0" },
			wantPath: "spec.commit"},
		{name: "commit upper case", edit: func(_ *resource.Metadata, s *Spec) { s.Commit = strings.ToUpper(commit) },
			wantPath: "spec.commit"},
		{name: "creator too long", edit: func(_ *resource.Metadata, s *Spec) { s.Creator = strings.Repeat("c", 254) },
			wantPath: "spec.creator", wantMsg: []string{"the limit is 253"}},
		{name: "wrong object name", edit: func(m *resource.Metadata, _ *Spec) { m.Name = "shop-1-4-0" },
			wantPath: "metadata.name", wantMsg: []string{`must be named "shop-1.4.0"`, `not "shop-1-4-0"`}},
		{name: "app label disagrees", edit: func(m *resource.Metadata, _ *Spec) { m.Labels = map[string]string{"app": "cart"} },
			wantPath: "metadata.labels", wantMsg: []string{`label app="cart" disagrees with spec.app "shop"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, s := resource.Metadata{Name: "shop-1.4.0"}, spec()
			if tt.edit != nil {
				tt.edit(&m, &s)
			}
			wantPathError(t, Validate(m, s), tt.wantPath, tt.wantMsg...)
		})
	}
}

func TestImmutable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		edit     func(*Spec)
		wantPath string
	}{
		{name: "unchanged", edit: func(*Spec) {}},
		{name: "version", edit: func(s *Spec) { s.Version = "1.4.1" }, wantPath: "spec.version"},
		{name: "digest", edit: func(s *Spec) { s.Artifact.Digest = "sha256:" + strings.Repeat("0", 64) }, wantPath: "spec.artifact.digest"},
		{name: "artifact name", edit: func(s *Spec) { s.Artifact.Name = "other.tar.gz" }, wantPath: "spec.artifact.name"},
		{name: "size", edit: func(s *Spec) { s.Artifact.Size = 2048 }, wantPath: "spec.artifact.size"},
		{name: "commit", edit: func(s *Spec) { s.Commit = "abcdef0" }, wantPath: "spec.commit"},
		{name: "creator", edit: func(s *Spec) { s.Creator = "mallory" }, wantPath: "spec.creator"},
		{name: "app", edit: func(s *Spec) { s.App = "cart" }, wantPath: "spec.app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := spec()
			tt.edit(&n)
			msg := []string{}
			if tt.wantPath != "" {
				msg = []string{"release shop-1.4.0 is immutable", "needs a new version, registered as a new release"}
			}
			wantPathError(t, Immutable(spec(), n), tt.wantPath, msg...)
		})
	}
}

func TestDigestFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(path, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, n, err := DigestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// sha256sum of "hello\n".
	want := "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if d != want || n != 6 {
		t.Errorf("DigestFile = %s, %d; want %s, 6", d, n, want)
	}
	if _, _, err := DigestFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DigestFile(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := `apiVersion: airlock.dev/v1
kind: Release
metadata: {name: shop-1.4.0, labels: {app: shop}}
spec:
  app: shop
  version: "1.4.0"
  artifact: {digest: "` + digest + `", size: 1024}
  commit: "` + commit + `"
`
	if _, err := s.Decode("rel.yaml", []byte(in)); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	_, err := s.Decode("rel.yaml", []byte(strings.Replace(in, "name: shop-1.4.0", "name: shop-1.4", 1)))
	var des resource.DecodeErrors
	if !errors.As(err, &des) || len(des) != 1 || des[0].Path != "metadata.name" || des[0].Line != 3 {
		t.Fatalf("Decode with the wrong name: got %v, want one error at line 3 metadata.name", err)
	}
	if k, ok := s.Lookup("rel"); !ok || k.Name != "Release" || !k.Declarative {
		t.Errorf("Lookup(rel) = %+v, %v; want the declarative Release kind", k, ok)
	}
}
