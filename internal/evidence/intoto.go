package evidence

// in-toto Statements (https://github.com/in-toto/attestation) carried in
// DSSE envelopes: attestations (SLSA provenance recognised) and airlock's
// own evidence predicate, which wraps any report in a signed statement.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Attestations register with the dispatcher under the format name
// "dsse-intoto"; the dispatcher's parser has no keys (see
// parseAttestationNoKeys).
var _ = register(Attestation, FormatDSSEInToto, IsEnvelope, parseAttestationNoKeys)

// Identifiers of in-toto statements and the predicates airlock reads.
const (
	// InTotoPayloadType is the DSSE payloadType of an in-toto Statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementV1 is the _type of an in-toto Statement v1.
	StatementV1 = "https://in-toto.io/Statement/v1"
	// StatementV01 is the _type of the older Statement v0.1, still accepted.
	StatementV01 = "https://in-toto.io/Statement/v0.1"
	// SLSAProvenanceV1 and SLSAProvenanceV02 are the SLSA provenance
	// predicate types airlock recognises.
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	SLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	// EvidencePredicateType is airlock's predicate that carries one report
	// of any evidence type, so the report is signed and bound to the
	// statement's subjects. Its predicate is
	// {"type": TYPE, "format": FORMAT?, "encoding": "utf-8"|"base64"?, "content": REPORT}.
	EvidencePredicateType = "https://airlock.dev/evidence/v1"
)

// FormatDSSEInToto is the Report.Format of attestations.
const FormatDSSEInToto = "dsse-intoto"

// MaxSubjects bounds the subjects of one statement.
const MaxSubjects = 4096

const intotoFormat = "in-toto Statement"

// intotoStatement is the part of a statement airlock reads.
type intotoStatement struct {
	Type          string
	Subjects      []string // "sha256:<hex>", in document order, without duplicates
	PredicateType string
	Predicate     json.RawMessage
}

type intotoStatementJSON struct {
	Type    *string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType *string         `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// parseStatement reads an in-toto Statement from a DSSE payload. Every
// statement must name at least one subject with a sha256 digest: that is
// what binds it to a release.
func parseStatement(env *Envelope) (*intotoStatement, error) {
	if env.PayloadType != InTotoPayloadType {
		return nil, Errorf(dsseFormat, "payloadType is %q; an attestation holds an in-toto Statement, payloadType %q", trustClip(env.PayloadType), InTotoPayloadType)
	}
	var raw intotoStatementJSON
	if err := trustUnmarshal(env.Payload, &raw, intotoFormat); err != nil {
		return nil, err
	}
	st := &intotoStatement{Predicate: raw.Predicate}
	switch {
	case raw.Type == nil:
		return nil, Errorf(intotoFormat, "_type is missing; want %q", StatementV1)
	case *raw.Type != StatementV1 && *raw.Type != StatementV01:
		return nil, Errorf(intotoFormat, "_type is %q; want %q (or the older %q)", trustClip(*raw.Type), StatementV1, StatementV01)
	case len(raw.Subject) == 0:
		return nil, Errorf(intotoFormat, "subject is missing or empty; a statement must name the artifacts it describes")
	case len(raw.Subject) > MaxSubjects:
		return nil, Errorf(intotoFormat, "%d subjects; the limit is %d", len(raw.Subject), MaxSubjects)
	case raw.PredicateType == nil || *raw.PredicateType == "":
		return nil, Errorf(intotoFormat, "predicateType is missing")
	case len(*raw.PredicateType) > 1024:
		return nil, Errorf(intotoFormat, "predicateType is %d bytes long; the limit is 1024", len(*raw.PredicateType))
	}
	st.Type, st.PredicateType = *raw.Type, *raw.PredicateType
	seen := map[string]bool{}
	for i, s := range raw.Subject {
		if len(s.Digest) == 0 {
			return nil, Errorf(intotoFormat, "subject[%d] (%q) has no digest", i, trustClip(s.Name))
		}
		hx, ok := s.Digest["sha256"]
		if !ok {
			continue
		}
		d, err := trustSHA256(hx)
		if err != nil {
			return nil, Errorf(intotoFormat, "subject[%d] (%q) digest.sha256 %v", i, trustClip(s.Name), err)
		}
		if !seen[d] {
			seen[d] = true
			st.Subjects = append(st.Subjects, d)
		}
	}
	if len(st.Subjects) == 0 {
		return nil, Errorf(intotoFormat, "no subject has a sha256 digest; airlock binds evidence to the sha256 digest of a release's artifact")
	}
	return st, nil
}

// trustSHA256 checks hx is 64 hex digits and returns "sha256:<lower hex>".
func trustSHA256(hx string) (string, error) {
	if len(hx) != 64 {
		return "", fmt.Errorf("has %d characters; a sha256 digest is 64 hex digits", len(hx))
	}
	for i := 0; i < len(hx); i++ {
		c := hx[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("contains %q, which is not a hex digit", c)
		}
	}
	return "sha256:" + strings.ToLower(hx), nil
}

// trustClip shortens s for an error message.
func trustClip(s string) string {
	if len(s) <= 80 {
		return s
	}
	cut := 80
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ParseAttestation reads a DSSE envelope holding an in-toto Statement (v1,
// or v0.1), verifies its signatures against keys, and returns the report
// (Type attestation, Format "dsse-intoto", Subjects the statement's sha256
// subjects) and the trust outcome. SLSA provenance v1 and v0.2 predicates
// are recognised; any other predicate is recorded by type only.
//
// A well-formed envelope that no registered key verifies is not an error:
// Trust.Trusted is false and the report is returned. Malformed input is a
// *FormatError.
func ParseAttestation(r io.Reader, keys []TrustedKey) (*Report, Trust, error) {
	env, err := ParseEnvelope(r)
	if err != nil {
		return nil, Trust{}, err
	}
	st, err := parseStatement(env)
	if err != nil {
		return nil, Trust{}, err
	}
	k, ok, err := verifyEnvelope(env, keys)
	if err != nil {
		return nil, Trust{}, err
	}
	trust := trustOf(k, ok, len(keys), envelopeKeyIDs(env))
	rep := &Report{Type: Attestation, Format: FormatDSSEInToto, Facts: map[string]any{}, Subjects: st.Subjects}
	if err := statementFacts(rep.Facts, "attestation", st); err != nil {
		return nil, Trust{}, err
	}
	rep.Facts["attestation.signatures"] = float64(len(env.Signatures))
	trustFacts(rep.Facts, "attestation", trust)
	return rep, trust, nil
}

func envelopeKeyIDs(env *Envelope) []string {
	ids := make([]string, len(env.Signatures))
	for i, s := range env.Signatures {
		ids[i] = s.KeyID
	}
	return ids
}

// trustFacts records a trust outcome under prefix: verified, signer, key_id.
func trustFacts(facts map[string]any, prefix string, t Trust) {
	facts[prefix+".verified"] = t.Trusted
	facts[prefix+".signer"] = t.Signer
	facts[prefix+".key_id"] = t.KeyID
}

// statementFacts records what a statement says under prefix: the
// predicate type, the statement version, the subject count and, for SLSA
// provenance, the builder, build type and dependency count.
func statementFacts(facts map[string]any, prefix string, st *intotoStatement) error {
	facts[prefix+".predicate_type"] = st.PredicateType
	facts[prefix+".subjects"] = float64(len(st.Subjects))
	if st.Type == StatementV01 {
		facts[prefix+".statement_version"] = "v0.1"
	} else {
		facts[prefix+".statement_version"] = "v1"
	}
	noPredicate := len(bytes.TrimSpace(st.Predicate)) == 0 || bytes.Equal(bytes.TrimSpace(st.Predicate), []byte("null"))
	switch st.PredicateType {
	case SLSAProvenanceV1:
		if noPredicate {
			return Errorf("SLSA provenance v1", "predicate is missing")
		}
		var p struct {
			BuildDefinition *struct {
				BuildType            *string           `json:"buildType"`
				ResolvedDependencies []json.RawMessage `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails *struct {
				Builder *struct {
					ID *string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		const f = "SLSA provenance v1"
		if err := trustUnmarshal(st.Predicate, &p, f); err != nil {
			return err
		}
		switch {
		case p.BuildDefinition == nil || p.BuildDefinition.BuildType == nil || *p.BuildDefinition.BuildType == "":
			return Errorf(f, "predicate.buildDefinition.buildType is missing")
		case p.RunDetails == nil || p.RunDetails.Builder == nil || p.RunDetails.Builder.ID == nil || *p.RunDetails.Builder.ID == "":
			return Errorf(f, "predicate.runDetails.builder.id is missing")
		}
		facts[prefix+".slsa_version"] = "v1"
		facts[prefix+".build_type"] = *p.BuildDefinition.BuildType
		facts[prefix+".builder_id"] = *p.RunDetails.Builder.ID
		facts[prefix+".resolved_dependencies"] = float64(len(p.BuildDefinition.ResolvedDependencies))
	case SLSAProvenanceV02:
		if noPredicate {
			return Errorf("SLSA provenance v0.2", "predicate is missing")
		}
		var p struct {
			Builder *struct {
				ID *string `json:"id"`
			} `json:"builder"`
			BuildType *string           `json:"buildType"`
			Materials []json.RawMessage `json:"materials"`
		}
		const f = "SLSA provenance v0.2"
		if err := trustUnmarshal(st.Predicate, &p, f); err != nil {
			return err
		}
		switch {
		case p.Builder == nil || p.Builder.ID == nil || *p.Builder.ID == "":
			return Errorf(f, "predicate.builder.id is missing")
		case p.BuildType == nil || *p.BuildType == "":
			return Errorf(f, "predicate.buildType is missing")
		}
		facts[prefix+".slsa_version"] = "v0.2"
		facts[prefix+".build_type"] = *p.BuildType
		facts[prefix+".builder_id"] = *p.Builder.ID
		facts[prefix+".resolved_dependencies"] = float64(len(p.Materials))
	}
	return nil
}

// parseAttestationNoKeys is the Parser registered for Type attestation: it
// extracts the statement; with no keys, attestation.verified is false. The
// server calls ParseAttestation with the registered keys instead.
func parseAttestationNoKeys(r io.Reader, _ Options) (*Report, error) {
	rep, _, err := ParseAttestation(r, nil)
	return rep, err
}

// Wrapped is one report carried in a signed in-toto statement with
// predicate EvidencePredicateType.
type Wrapped struct {
	// Type and Format are what the signer declared the content to be;
	// Format may be empty.
	Type   Type
	Format string
	// Content is the report itself, to be parsed by Type's parser.
	Content []byte
	// Subjects are the statement's sha256 subjects ("sha256:<hex>").
	Subjects []string
	Trust    Trust
}

// envelopeSniffBytes is how much of a document Unwrap reads to decide
// whether it is an envelope.
const envelopeSniffBytes = 4 << 10

// UnwrapEnvelope reads a document that may be a DSSE envelope carrying an
// airlock evidence statement. When the first 4 KiB do not look like a
// DSSE envelope (IsEnvelope), it returns nil, nil having read at most those
// bytes of r: the caller parses the original document from its stored copy.
// Otherwise the envelope must hold an in-toto Statement with predicateType
// EvidencePredicateType, or it is a *FormatError; signatures are verified
// against keys as ParseAttestation does.
func UnwrapEnvelope(r io.Reader, keys []TrustedKey) (*Wrapped, error) {
	br := bufio.NewReaderSize(r, envelopeSniffBytes)
	head, err := br.Peek(envelopeSniffBytes)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, Errorf(dsseFormat, "read: %v", err)
	}
	if !IsEnvelope(head) {
		return nil, nil
	}
	env, err := ParseEnvelope(br)
	if err != nil {
		return nil, err
	}
	st, err := parseStatement(env)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != EvidencePredicateType {
		return nil, Errorf(intotoFormat, "predicateType is %q; a signed report uses %q (add other attestations as evidence of type attestation)", trustClip(st.PredicateType), EvidencePredicateType)
	}
	w, err := parseEvidencePredicate(st.Predicate)
	if err != nil {
		return nil, err
	}
	w.Subjects = st.Subjects
	k, ok, err := verifyEnvelope(env, keys)
	if err != nil {
		return nil, err
	}
	w.Trust = trustOf(k, ok, len(keys), envelopeKeyIDs(env))
	return w, nil
}

// Unwrap is UnwrapEnvelope returning the parts separately: the inner
// report, the statement's subjects and the trust outcome, with wrapped
// false (and nothing else set) for a document that is not an envelope.
// Callers that must check the declared evidence type use UnwrapEnvelope.
func Unwrap(r io.Reader, keys []TrustedKey) (inner []byte, subjects []string, trust Trust, wrapped bool, err error) {
	w, err := UnwrapEnvelope(r, keys)
	if err != nil || w == nil {
		return nil, nil, Trust{}, false, err
	}
	return w.Content, w.Subjects, w.Trust, true, nil
}

const evidencePredicateFormat = "airlock evidence predicate"

func parseEvidencePredicate(raw json.RawMessage) (*Wrapped, error) {
	const f = evidencePredicateFormat
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, Errorf(f, "predicate is missing; want {\"type\", \"content\"}")
	}
	var p struct {
		Type     *string `json:"type"`
		Format   string  `json:"format"`
		Encoding string  `json:"encoding"`
		Content  *string `json:"content"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return nil, Errorf(f, "predicate has %s; its fields are type, format, encoding and content", strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, trustJSONError(err, raw, f)
	}
	if p.Type == nil || *p.Type == "" {
		return nil, Errorf(f, "predicate.type is missing; name the evidence type, e.g. \"tests\"")
	}
	t, err := ParseType(*p.Type)
	if err != nil {
		return nil, Errorf(f, "predicate.type: %v", err)
	}
	if t == Attestation || t == Signature {
		return nil, Errorf(f, "predicate.type %q cannot be wrapped: add attestations and Sigstore bundles as they are", t)
	}
	if len(p.Format) > 64 {
		return nil, Errorf(f, "predicate.format is %d bytes long; the limit is 64", len(p.Format))
	}
	if p.Content == nil || *p.Content == "" {
		return nil, Errorf(f, "predicate.content is missing; it holds the report itself")
	}
	w := &Wrapped{Type: t, Format: p.Format}
	switch p.Encoding {
	case "", "utf-8":
		w.Content = []byte(*p.Content)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(*p.Content)
		if err != nil {
			return nil, Errorf(f, "predicate.content is not valid base64: %v", err)
		}
		w.Content = b
	default:
		return nil, Errorf(f, "predicate.encoding is %q; use \"utf-8\" (the default) or \"base64\"", trustClip(p.Encoding))
	}
	return w, nil
}
