package approval

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
)

// SecurityRole is the role a security-relevant change must be approved by.
const SecurityRole = "security"

// DefaultSecurityPaths are the paths that make a change security-relevant
// when an approvals gate declares none: authentication, authorization,
// cryptography, secrets, identity and access management, and the
// infrastructure and pipeline definitions that grant them. Matching ignores
// case.
var DefaultSecurityPaths = []string{
	"**/auth/**", "**/authn/**", "**/authz/**", "**/*auth*.*", "**/login/**", "**/session*/**",
	"**/oauth*/**", "**/oidc/**", "**/saml/**", "**/rbac/**", "**/permission*/**", "**/policy/**", "**/policies/**",
	"**/crypto/**", "**/*crypt*.*", "**/tls/**", "**/*cert*.*", "**/*.pem", "**/*.key",
	"**/secret*/**", "**/*secret*", "**/vault/**", "**/*.env", "**/.env*",
	"**/iam/**", "**/*iam*.*", "**/*.tf", "**/*.tfvars", "**/terraform/**", "**/k8s/**rbac*", "**/*role*.yaml", "**/*role*.yml",
	".github/workflows/**", ".gitlab-ci.yml", "**/Jenkinsfile", "**/Dockerfile", "**/CODEOWNERS",
}

// maxMatches bounds the matched paths a result names.
const maxMatches = 5

// compilePath turns a path pattern into an anchored, case-insensitive
// regular expression: "**/" matches any number of directories (also none),
// "**" anything, "*" and "?" stay within one path element.
func compilePath(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("(?i)^")
	for i := 0; i < len(p); {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 3
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i += 2
		case p[i] == '*':
			b.WriteString("[^/]*")
			i++
		case p[i] == '?':
			b.WriteString("[^/]")
			i++
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			i++
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ValidatePaths checks an approvals gate's security path patterns.
func ValidatePaths(ps []string) error {
	for _, p := range ps {
		if strings.TrimSpace(p) == "" || len(p) > 512 {
			return fmt.Errorf("security path pattern %q must be 1 to 512 characters", p)
		}
		if _, err := compilePath(p); err != nil {
			return fmt.Errorf("security path pattern %q: %v", p, err)
		}
	}
	return nil
}

// SecurityMatches returns the changed paths, from the release's changeset
// evidence, that match one of the patterns, as "path (pattern)", at most
// maxMatches of them, and how many matched in all.
func SecurityMatches(patterns []string, ev []gate.Evidence) ([]string, int) {
	var res []*regexp.Regexp
	for _, p := range patterns {
		if re, err := compilePath(p); err == nil {
			res = append(res, re)
		}
	}
	seen := map[string]bool{}
	var out []string
	n := 0
	for _, e := range ev {
		if e.Type != evidence.Changeset {
			continue
		}
		for _, path := range stringsOf(e.Report.Facts["changeset.paths"]) {
			if seen[path] {
				continue
			}
			seen[path] = true
			for i, re := range res {
				if re.MatchString(path) {
					n++
					if len(out) < maxMatches {
						out = append(out, fmt.Sprintf("%s (%s)", path, patterns[i]))
					}
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out, n
}

// stringsOf reads a list fact, which is []string from a parser and []any
// once it has been through JSON.
func stringsOf(v any) []string {
	switch t := v.(type) {
	case []string:
		return t
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// EffectiveRequire is the roles and counts an approvals gate requires for
// this release: its declared Require, plus one security approval when the
// changeset touches a security-relevant path. It also returns the reason
// to show, empty when the change is not security-relevant.
func EffectiveRequire(s gate.Spec, ev []gate.Evidence) (map[string]int, string) {
	patterns := DefaultSecurityPaths
	if s.SecurityPaths != nil {
		patterns = *s.SecurityPaths
	}
	out := make(map[string]int, len(s.Require)+1)
	for r, n := range s.Require {
		out[r] = n
	}
	matches, n := SecurityMatches(patterns, ev)
	if n == 0 {
		return out, ""
	}
	if out[SecurityRole] < 1 {
		out[SecurityRole] = 1
	}
	more := ""
	if n > len(matches) {
		more = fmt.Sprintf(" and %d more", n-len(matches))
	}
	return out, fmt.Sprintf("security-relevant change, so a %s approval is required: %s%s", SecurityRole, strings.Join(matches, ", "), more)
}
