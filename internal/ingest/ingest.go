// Package ingest accepts evidence for a release: it unwraps a signed DSSE
// envelope (verifying it against the registered CI keys), parses the
// report, checks that the document describes the release's artifact,
// stores the raw document content-addressed, records the facts as an
// Evidence object, and re-evaluates the release's open promotions, all in
// one transaction. A rejected document leaves nothing behind.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/keys"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Register adds the Evidence kind to a scheme. Evidence is not
// declarative: it arrives through the evidence endpoint only.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: evidence.Kind, Plural: "evidence", Aliases: []string{"evidences", "ev"}, NewSpec: func() any { return &evidence.Record{} }})
}

// InvalidError is a request or document airlock cannot accept as given. The
// API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// MismatchError is a document that describes another artifact than the
// release's. The API maps it to 422.
type MismatchError struct{ Msg string }

func (e *MismatchError) Error() string { return e.Msg }

// Reevaluator re-judges a release's open promotions inside a transaction.
type Reevaluator func(ctx context.Context, tx store.Tx, releaseName string) error

// Service ingests evidence.
type Service struct {
	store      store.Store
	reevaluate Reevaluator
}

// New returns a Service; reevaluate may be nil.
func New(st store.Store, reevaluate Reevaluator) *Service {
	return &Service{store: st, reevaluate: reevaluate}
}

// Request is one document to attach to a release.
type Request struct {
	App     string
	Version string
	Type    evidence.Type
	Suite   evidence.Suite // tests only; default unit
	Name    string         // default: the type, and the suite for tests
	// Body is the document as delivered, read as many times as needed
	// (an *os.File the API spooled the upload to, or a *bytes.Reader).
	Body io.ReaderAt
	Size int64
	// CanSignAs reports whether the submitter holds a role, for sign-offs.
	CanSignAs func(role string) bool
}

func (r *Request) normalise() error {
	if _, err := evidence.ParseType(string(r.Type)); err != nil {
		return &InvalidError{Msg: err.Error()}
	}
	switch {
	case r.Type == evidence.Tests && r.Suite == "":
		r.Suite = evidence.Unit
	case r.Type == evidence.Tests:
		if !slices.Contains(evidence.Suites, r.Suite) {
			return &InvalidError{Msg: fmt.Sprintf("unknown suite %q; suites: unit, integration, contract, e2e, smoke", r.Suite)}
		}
	case r.Suite != "":
		return &InvalidError{Msg: fmt.Sprintf("--suite applies to tests evidence only, not %s", r.Type)}
	}
	if r.Name == "" {
		r.Name = string(r.Type)
		if r.Suite != "" {
			r.Name += "-" + string(r.Suite)
		}
	}
	if err := resource.ValidateName(r.Name); err != nil {
		return &InvalidError{Msg: "evidence name: " + err.Error()}
	}
	if r.Body == nil || r.Size == 0 {
		return &InvalidError{Msg: "the document is empty"}
	}
	if r.Size > evidence.MaxDocumentBytes {
		return &InvalidError{Msg: fmt.Sprintf("the document is %d bytes; the limit is %d", r.Size, evidence.MaxDocumentBytes)}
	}
	return nil
}

// Add ingests one document. Adding the same document again for the same
// release, type, suite and name returns the existing record unchanged, so
// CI may retry.
// document returns a fresh reader over the whole document.
func (r *Request) document() io.Reader { return io.NewSectionReader(r.Body, 0, r.Size) }

func (s *Service) Add(ctx context.Context, actor store.Actor, req Request) (*resource.Object, error) {
	if err := req.normalise(); err != nil {
		return nil, err
	}
	relName := release.Name(req.App, req.Version)
	rel, err := s.store.Get(ctx, "Release", relName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("release %s %s does not exist (register it with `airlock release create`): %w", req.App, req.Version, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var relSpec release.Spec
	if err := rel.DecodeSpec(&relSpec); err != nil {
		return nil, err
	}
	trusted, err := s.trustedKeys(ctx)
	if err != nil {
		return nil, err
	}
	// Parsing (and, in parallel, hashing and compressing the document for
	// storage) happens before the write transaction, so a large report
	// does not hold up other writers.
	type prepared struct {
		blob *store.PreparedBlob
		err  error
	}
	blobc := make(chan prepared, 1)
	go func() {
		b, err := s.store.PrepareBlob(req.document())
		blobc <- prepared{b, err}
	}()
	rec, findings, err := Parse(req, relSpec, trusted)
	doc := <-blobc
	if err != nil {
		return nil, err
	}
	if doc.err != nil {
		return nil, fmt.Errorf("store the document: %w", doc.err)
	}
	rec.App, rec.Version, rec.Release, rec.SubmittedBy = req.App, req.Version, relName, actor.Name
	rec.Digest = doc.blob.Digest
	var findingsBlob *store.PreparedBlob
	if len(findings) > 0 {
		data, err := json.Marshal(findings)
		if err != nil {
			return nil, err
		}
		if findingsBlob, err = s.store.PrepareBlob(bytes.NewReader(data)); err != nil {
			return nil, err
		}
		rec.FindingsDigest = findingsBlob.Digest
	}

	var out *resource.Object
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		name := recordName(relName, rec)
		if cur, err := tx.Get(ctx, evidence.Kind, name); err == nil {
			out = cur
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.PutBlob(ctx, doc.blob); err != nil {
			return err
		}
		if findingsBlob != nil {
			if err := tx.PutBlob(ctx, findingsBlob); err != nil {
				return err
			}
		}
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: evidence.Kind, Metadata: resource.Metadata{Name: name, Labels: map[string]string{
			"app": req.App, "release": relName, "type": string(rec.Type),
		}}}
		if rec.Suite != "" {
			obj.Metadata.Labels["suite"] = string(rec.Suite)
		}
		if err := obj.SetSpec(rec); err != nil {
			return err
		}
		if out, err = tx.Create(ctx, obj); err != nil {
			return err
		}
		if s.reevaluate != nil {
			return s.reevaluate(ctx, tx, relName)
		}
		return nil
	})
	return out, err
}

// recordName derives an Evidence object's name from what identifies it.
func recordName(relName string, rec *evidence.Record) string {
	sum := sha256.Sum256([]byte(relName + "\x00" + string(rec.Type) + "\x00" + string(rec.Suite) + "\x00" + rec.Name + "\x00" + rec.Digest))
	return "ev-" + hex.EncodeToString(sum[:10])
}

func (s *Service) trustedKeys(ctx context.Context) ([]evidence.TrustedKey, error) {
	objs, err := s.store.List(ctx, keys.Kind, nil)
	if err != nil {
		return nil, fmt.Errorf("load registered keys: %w", err)
	}
	out := make([]evidence.TrustedKey, 0, len(objs))
	for _, o := range objs {
		var k keys.Spec
		if err := o.DecodeSpec(&k); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		pub, _, id, err := keys.ParsePublicKey([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Ref(), err)
		}
		out = append(out, evidence.TrustedKey{Name: k.Identity, Key: pub, KeyID: id})
	}
	return out, nil
}

// Parse turns a request into a record and its findings without storing
// anything: it unwraps and verifies a signed envelope, parses the report
// and binds it to the release's artifact digest. It is pure apart from the
// keys it is given, and is what Add runs before its transaction.
func Parse(req Request, rel release.Spec, trusted []evidence.TrustedKey) (*evidence.Record, []evidence.Finding, error) {
	var (
		report       *evidence.Report
		trust        evidence.Trust
		signedFor    []string
		wrappedTrust bool
		err          error
	)
	switch req.Type {
	case evidence.Attestation:
		report, trust, err = evidence.ParseAttestation(req.document(), trusted)
		if err == nil {
			signedFor, wrappedTrust = report.Subjects, true
		}
	case evidence.Signature:
		report, trust, err = evidence.ParseSignature(req.document(), trusted)
		if err == nil {
			signedFor, wrappedTrust = report.Subjects, true
		}
	default:
		w, uerr := evidence.UnwrapEnvelope(req.document(), trusted)
		if uerr != nil {
			return nil, nil, &InvalidError{Msg: uerr.Error()}
		}
		body := req.document()
		if w != nil {
			if w.Type != req.Type {
				return nil, nil, &InvalidError{Msg: fmt.Sprintf("the signed statement declares %s evidence, not %s; add it with --type %s", w.Type, req.Type, w.Type)}
			}
			body, trust, signedFor, wrappedTrust = bytes.NewReader(w.Content), w.Trust, w.Subjects, true
		}
		report, err = evidence.Parse(req.Type, body, evidence.Options{Suite: req.Suite})
	}
	if err != nil {
		var fe *evidence.FormatError
		if errors.As(err, &fe) {
			return nil, nil, &InvalidError{Msg: fmt.Sprintf("%s evidence rejected, nothing was stored: %v", req.Type, err)}
		}
		return nil, nil, err
	}
	digest := rel.Artifact.Digest
	subjects := append(append([]string(nil), report.Subjects...), signedFor...)
	if len(subjects) > 0 && !slices.Contains(subjects, digest) {
		return nil, nil, &MismatchError{Msg: fmt.Sprintf("the %s document describes %s, not release %s %s's artifact %s; attach it to the release it was produced for",
			req.Type, strings.Join(short(subjects), ", "), rel.App, rel.Version, digest)}
	}
	rec := &evidence.Record{
		Type: report.Type, Suite: req.Suite, Name: req.Name, Size: req.Size, Format: report.Format,
		Facts: report.Facts, Findings: len(report.Findings), Subjects: subjects,
	}
	if rec.Type == "" {
		rec.Type = req.Type
	}
	switch {
	case !wrappedTrust:
		rec.TrustReason = "unsigned: deliver it in a DSSE envelope signed by a registered CI key to make it trusted"
	case !trust.Trusted:
		rec.TrustReason = trust.Reason
	case !slices.Contains(signedFor, digest):
		rec.TrustReason = fmt.Sprintf("signed by %s, but the signed statement does not name the release's artifact %s", trust.Signer, digest)
	default:
		rec.Trusted, rec.Signer, rec.KeyID, rec.TrustReason = true, trust.Signer, trust.KeyID, trust.Reason
	}
	if req.Type == evidence.Signoff {
		role, _ := report.Facts["signoff.role"].(string)
		if req.CanSignAs == nil || !req.CanSignAs(role) {
			return nil, nil, &MismatchError{Msg: fmt.Sprintf("a %s sign-off must come from someone holding that role; your token does not hold it", role)}
		}
		// A sign-off is a person's own statement made through their token:
		// the authenticated identity is what makes it trustworthy.
		rec.Trusted, rec.Signer, rec.TrustReason = true, "", "recorded in airlock by an authenticated identity holding the role"
	}
	return rec, report.Findings, nil
}

func short(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		if len(d) > 19 {
			d = d[:19] + "…"
		}
		out[i] = d
	}
	return out
}
