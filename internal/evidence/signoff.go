package evidence

// Sign-offs: a person's recorded decision (UAT, accessibility, compliance
// review), as a small JSON document. The server records who signed it (the
// caller); the document says what was signed off, in which role, and why.

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var _ = register(Signoff, FormatSignoff, IsSignoff, ParseSignoff)

// FormatSignoff is the Report.Format of sign-offs.
const FormatSignoff = "airlock-signoff"

// Sign-off limits.
const (
	// MaxSignoffBytes bounds a sign-off document.
	MaxSignoffBytes = 64 << 10
	// MaxSignoffReason bounds a sign-off's reason, in characters.
	MaxSignoffReason = 2000
	signoffMaxWord   = 64
	signoffMaxRef    = 512
)

// Sign-off kinds airlock's example pipeline uses; any [a-z-]+ word is accepted.
const (
	SignoffUAT           = "uat"
	SignoffAccessibility = "accessibility"
	SignoffCompliance    = "compliance"
)

// SignoffRoles are the approver roles a sign-off usually names; any other
// [a-z-]+ word is accepted too.
var SignoffRoles = []string{"tech-lead", "security", "sre", "business-owner"}

const signoffFormat = "airlock sign-off"

var (
	signoffKindRE = regexp.MustCompile(`^[a-z][a-z-]*$`)
	signoffRoleRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// ParseSignoff reads a sign-off: {"kind": "uat"|"accessibility"|
// "compliance"|..., "role": "tech-lead"|"security"|"sre"|
// "business-owner"|..., "reason": TEXT, "reference": URL-or-ticket?}.
// Kind is a lower-case word of letters and '-', role may also hold
// digits ("a11y-auditor"); reason is
// required, at most 2000 characters; unknown fields are rejected so a
// misspelt field is not silently dropped. Facts: signoff.kind,
// signoff.role, signoff.reason and signoff.reference (empty when absent).
func ParseSignoff(r io.Reader, _ Options) (*Report, error) {
	const f = signoffFormat
	data, err := trustReadAll(r, MaxSignoffBytes, f)
	if err != nil {
		return nil, err
	}
	var s struct {
		Kind      *string `json:"kind"`
		Role      *string `json:"role"`
		Reason    *string `json:"reason"`
		Reference string  `json:"reference"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return nil, Errorf(f, "%s; the fields are kind, role, reason and reference", strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, trustJSONError(err, data, f)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(f, "unexpected data after the JSON document")
	}
	if err := signoffWord("kind", s.Kind, signoffKindRE, "lower-case letters and '-'", `e.g. "uat", "accessibility" or "compliance"`); err != nil {
		return nil, err
	}
	if err := signoffWord("role", s.Role, signoffRoleRE, "lower-case letters, digits and '-'", "e.g. "+strings.Join(SignoffRoles, ", ")); err != nil {
		return nil, err
	}
	if s.Reason == nil || strings.TrimSpace(*s.Reason) == "" {
		return nil, Errorf(f, "reason is required: say what was reviewed and why it is accepted")
	}
	reason := strings.TrimSpace(*s.Reason)
	if n := utf8.RuneCountInString(reason); n > MaxSignoffReason {
		return nil, Errorf(f, "reason is %d characters long; the limit is %d", n, MaxSignoffReason)
	}
	if !utf8.ValidString(reason) || strings.IndexFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return nil, Errorf(f, "reason contains control characters or invalid UTF-8")
	}
	ref := strings.TrimSpace(s.Reference)
	switch {
	case len(ref) > signoffMaxRef:
		return nil, Errorf(f, "reference is %d bytes long; the limit is %d", len(ref), signoffMaxRef)
	case strings.IndexFunc(ref, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return nil, Errorf(f, "reference %q contains spaces or control characters; give one URL or ticket id (e.g. JIRA-1234)", trustClip(ref))
	case !utf8.ValidString(ref):
		return nil, Errorf(f, "reference is not valid UTF-8")
	}
	return &Report{Type: Signoff, Format: FormatSignoff, Facts: map[string]any{
		"signoff.kind":      *s.Kind,
		"signoff.role":      *s.Role,
		"signoff.reason":    reason,
		"signoff.reference": ref,
	}}, nil
}

func signoffWord(field string, v *string, re *regexp.Regexp, chars, example string) error {
	switch {
	case v == nil || *v == "":
		return Errorf(signoffFormat, "%s is required (%s)", field, example)
	case len(*v) > signoffMaxWord:
		return Errorf(signoffFormat, "%s is %d characters long; the limit is %d", field, len(*v), signoffMaxWord)
	case !re.MatchString(*v):
		return Errorf(signoffFormat, "%s %q is invalid: use %s, starting with a letter (%s)", field, trustClip(*v), chars, example)
	}
	return nil
}

// IsSignoff reports whether head, the start of a document, looks like a
// sign-off: a JSON object with "kind", "role" and "reason" members.
func IsSignoff(head []byte) bool {
	h := bytes.TrimLeft(head, " \t\r\n\ufeff")
	return len(h) > 0 && h[0] == '{' && bytes.Contains(head, []byte(`"kind"`)) && bytes.Contains(head, []byte(`"role"`)) && bytes.Contains(head, []byte(`"reason"`))
}
