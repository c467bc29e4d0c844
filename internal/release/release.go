// Package release defines the Release kind: one immutable build of an
// application, identified by the sha256 digest of its artifact and named
// after the application and version ("shop-1.4.0").
//
// Everything here is pure except DigestFile, which reads a local file for
// the CLI.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/airlock-dev/airlock/internal/resource"
)

// MaxVersionLength is the longest version a release may carry.
const MaxVersionLength = 64

// DigestPrefix starts every artifact digest.
const DigestPrefix = "sha256:"

const maxText = 253 // artifact name and creator

var (
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]*$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
)

// Spec is what a release records. It never changes once created.
type Spec struct {
	App      string   `json:"app"`
	Version  string   `json:"version"`
	Artifact Artifact `json:"artifact"`
	Commit   string   `json:"commit"`
	// Authors are the airlock identities of the commit's authors; none of
	// them may approve the release's promotions.
	Authors []string `json:"authors,omitempty"`
	Creator string   `json:"creator,omitempty"`
}

// MaxAuthors is the most commit authors a release may name.
const MaxAuthors = 20

// Artifact is the built thing a release ships.
type Artifact struct {
	// Digest is "sha256:" and 64 lower-case hex digits; it identifies the
	// release's content everywhere (evidence, audit, deployments).
	Digest string `json:"digest"`
	// Name is the artifact's file or image name, for people.
	Name string `json:"name,omitempty"`
	// Size is the artifact's length in bytes; 0 when unknown.
	Size int64 `json:"size,omitempty"`
}

// Status is what the system records about a release: the environments it
// has been admitted to, each by the promotion that passed its gates.
type Status struct {
	Environments map[string]Admission `json:"environments,omitempty"`
}

// Admission records a release entering an environment.
type Admission struct {
	Promotion string    `json:"promotion"`
	At        time.Time `json:"at"`
	Emergency bool      `json:"emergency,omitempty"`
}

// Name returns the object name of version of app: "<app>-<version>",
// lower-cased, with '+' and '_' turned into '-' ("shop", "1.4.0+b_7" ->
// "shop-1.4.0-b-7"). Two versions that differ only in those characters or
// in case map to one name, so they cannot both be registered.
func Name(app, version string) string {
	return strings.NewReplacer("+", "-", "_", "-").Replace(strings.ToLower(app + "-" + version))
}

// ValidateVersion reports whether v may be a release version: 1 to 64
// letters, digits, '.', '-', '+' and '_', starting with a letter or digit
// (semantic versions such as 1.4.0-rc.1+build.7 fit).
func ValidateVersion(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("version is required (e.g. 1.4.0)")
	case len(v) > MaxVersionLength:
		return fmt.Errorf("version is %d characters long; the limit is %d", len(v), MaxVersionLength)
	case !versionRE.MatchString(v):
		return fmt.Errorf("version %q is invalid: use letters, digits, '.', '-', '+' and '_', starting with a letter or digit (e.g. 1.4.0 or 1.4.0-rc.1+build.7)", v)
	}
	return nil
}

// ParseDigest checks that s is an artifact digest, "sha256:" followed by 64
// lower-case hex digits, and returns the hex part.
func ParseDigest(s string) (string, error) {
	algo, hx, ok := strings.Cut(s, ":")
	switch {
	case s == "":
		return "", fmt.Errorf("digest is required: write sha256:<64 hex digits> (`airlock release create` computes it from the file, or run sha256sum)")
	case !ok:
		return "", fmt.Errorf("digest %q has no algorithm; write sha256:%s", s, s)
	case algo != "sha256":
		return "", fmt.Errorf("digest %q uses %q; only sha256 is supported (sha256:<64 hex digits>)", s, algo)
	case len(hx) != 2*sha256.Size:
		return "", fmt.Errorf("digest %q has %d hex digits after sha256:; a sha256 digest has 64", s, len(hx))
	}
	for _, r := range hx {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'f':
		case r >= 'A' && r <= 'F':
			return "", fmt.Errorf("digest %q must be lower-case hex; write %s", s, DigestPrefix+strings.ToLower(hx))
		default:
			return "", fmt.Errorf("digest %q contains %q, which is not a hex digit", s, r)
		}
	}
	return hx, nil
}

// ValidateCommit reports whether c is a git commit id: 7 to 40 lower-case
// hex digits.
func ValidateCommit(c string) error {
	switch {
	case c == "":
		return fmt.Errorf("commit is required: the source commit the artifact was built from (git rev-parse HEAD)")
	case !commitRE.MatchString(c):
		return fmt.Errorf("commit %q is not a git commit id: use 7 to 40 lower-case hex digits, as git rev-parse HEAD prints", c)
	}
	return nil
}

// DigestFile streams the file at path through sha256 and returns its digest
// ("sha256:...") and size in bytes.
func DigestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("digest artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("digest artifact %s: %w", path, err)
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil)), n, nil
}

// Register adds the Release kind to s. Releases may be applied from files,
// but a release's spec never changes: the service must call Immutable on
// update.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    "Release",
		Plural:  "releases",
		Aliases: []string{"rel", "releases"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(obj *resource.Object, spec any) error {
			r, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("release: spec has type %T, want *release.Spec", spec)
			}
			return Validate(obj.Metadata, *r)
		},
		Declarative: true,
	})
}

// Validate checks a release: app is a valid object name, version, digest
// and commit are well formed, the object is named Name(app, version), and
// an "app" label, when present, equals spec.app. The error is a
// *resource.PathError naming the field at fault.
func Validate(meta resource.Metadata, s Spec) error {
	if err := resource.ValidateName(s.App); err != nil {
		return resource.Errorf("spec.app", "app %v", err)
	}
	if err := ValidateVersion(s.Version); err != nil {
		return resource.Errorf("spec.version", "%v", err)
	}
	want := Name(s.App, s.Version)
	if err := resource.ValidateName(want); err != nil {
		return resource.Errorf("spec.version", "app and version make the release name %q, which is not a valid object name: %v; shorten the version or end it with a letter or digit", want, err)
	}
	if _, err := ParseDigest(s.Artifact.Digest); err != nil {
		return resource.Errorf("spec.artifact.digest", "%v", err)
	}
	if s.Artifact.Size < 0 {
		return resource.Errorf("spec.artifact.size", "size must be the artifact's length in bytes (0 when unknown), got %d", s.Artifact.Size)
	}
	if err := validateText("artifact name", s.Artifact.Name); err != nil {
		return resource.Errorf("spec.artifact.name", "%v", err)
	}
	if err := ValidateCommit(s.Commit); err != nil {
		return resource.Errorf("spec.commit", "%v", err)
	}
	if err := validateText("creator", s.Creator); err != nil {
		return resource.Errorf("spec.creator", "%v", err)
	}
	if len(s.Authors) > MaxAuthors {
		return resource.Errorf("spec.authors", "a release names at most %d commit authors, got %d", MaxAuthors, len(s.Authors))
	}
	for i, a := range s.Authors {
		if err := resource.ValidateName(a); err != nil {
			return resource.Errorf(fmt.Sprintf("spec.authors[%d]", i), "author must be an airlock identity name (as on their token): %v", err)
		}
	}
	if meta.Name != want {
		return resource.Errorf("metadata.name", "a release of app %q version %q must be named %q (app-version, lower-cased, '+' and '_' as '-'), not %q", s.App, s.Version, want, meta.Name)
	}
	if v, ok := meta.Labels["app"]; ok && v != s.App {
		return resource.Errorf("metadata.labels", "label app=%q disagrees with spec.app %q; set the label to %q or leave it out", v, s.App, s.App)
	}
	return nil
}

func validateText(what, s string) error {
	if len(s) > maxText {
		return fmt.Errorf("%s is %d characters long; the limit is %d", what, len(s), maxText)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s %q contains control characters", what, s)
	}
	return nil
}

// Immutable reports an error when an update would change a release's spec.
// A release is a fixed artifact: anything different is a new version and
// needs a new release.
func Immutable(old, new Spec) error {
	fields := []struct{ path, old, new string }{
		{"spec.app", old.App, new.App},
		{"spec.version", old.Version, new.Version},
		{"spec.artifact.digest", old.Artifact.Digest, new.Artifact.Digest},
		{"spec.artifact.name", old.Artifact.Name, new.Artifact.Name},
		{"spec.artifact.size", fmt.Sprint(old.Artifact.Size), fmt.Sprint(new.Artifact.Size)},
		{"spec.commit", old.Commit, new.Commit},
		{"spec.creator", old.Creator, new.Creator},
		{"spec.authors", strings.Join(old.Authors, ","), strings.Join(new.Authors, ",")},
	}
	for _, f := range fields {
		if f.old != f.new {
			return resource.Errorf(f.path,
				"release %s is immutable: %s would change from %q to %q; a new build needs a new version, registered as a new release",
				Name(old.App, old.Version), f.path, f.old, f.new)
		}
	}
	return nil
}
