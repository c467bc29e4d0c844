package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
)

// EvidenceRequest attaches one CI report to a release.
type EvidenceRequest struct {
	App     string
	Version string
	Type    string // tests, coverage, sast, ... (not signoff: see AddSignoff)
	Suite   string // tests only: unit, integration, contract, e2e, smoke
	Name    string // distinguishes several reports of one type
	// Body is the document as the tool wrote it, or a DSSE envelope around
	// it. It is streamed to the server unchanged.
	Body io.Reader
}

// AddEvidence uploads a report and returns the Evidence object the server
// stored, with its parsed facts and whether it is trusted. A malformed or
// mismatched report is a 400 or 422 and nothing is stored.
func (c *Client) AddEvidence(ctx context.Context, r EvidenceRequest) (*resource.Object, error) {
	q := url.Values{}
	q.Set("app", r.App)
	q.Set("version", r.Version)
	q.Set("type", r.Type)
	if r.Suite != "" {
		q.Set("suite", r.Suite)
	}
	if r.Name != "" {
		q.Set("name", r.Name)
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/evidence", query: q, body: r.Body, contentType: "application/octet-stream"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// SignoffRequest records the caller's sign-off on a release.
type SignoffRequest struct {
	App       string `json:"-"`
	Version   string `json:"-"`
	Kind      string `json:"kind"` // uat, accessibility, compliance, ...
	Role      string `json:"role"` // the role signing, which the caller must hold
	Reason    string `json:"reason"`
	Reference string `json:"reference,omitempty"`
}

// AddSignoff records a sign-off and returns the Evidence object (type
// signoff).
func (c *Client) AddSignoff(ctx context.Context, r SignoffRequest) (*resource.Object, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("app", r.App)
	q.Set("version", r.Version)
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/signoffs", query: q, body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// ListEvidence returns the Evidence objects of the release app@version.
func (c *Client) ListEvidence(ctx context.Context, app, version string) (*ObjectList, error) {
	return c.List(ctx, "evidence", "release="+release.Name(app, version))
}

// Emergency is the accountable reason for an emergency promotion.
type Emergency struct {
	Incident string `json:"incident"`
	Reason   string `json:"reason"`
}

// PromotionRequest asks to promote a release into an environment.
type PromotionRequest struct {
	App       string     `json:"app"`
	Version   string     `json:"version"`
	To        string     `json:"to"`
	Emergency *Emergency `json:"emergency,omitempty"`
	// RollbackPlan is this deployment's written rollback plan (default:
	// the application's for the environment, or airlock's rollback command).
	RollbackPlan string `json:"rollbackPlan,omitempty"`
}

// PromotionName is the name of the Promotion of app@version into env.
func PromotionName(app, version, env string) string {
	return release.Name(app, version) + ".to." + env
}

// Promote creates (or re-evaluates) the Promotion of a release and returns
// it. A blocked or pending promotion is not an error: read its phase with
// DecodePromotion. Skipping a stage is a 422, an unknown release a 404, a
// release already promoted a 409.
func (c *Client) Promote(ctx context.Context, r PromotionRequest) (*resource.Object, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/promotions", body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Promotion returns the Promotion object name.
func (c *Client) Promotion(ctx context.Context, name string) (*resource.Object, error) {
	return c.Get(ctx, "promotions", name)
}

// Promotion phases.
const (
	PhasePending   = "Pending"
	PhaseBlocked   = "Blocked"
	PhaseSucceeded = "Succeeded"
	PhaseDeploying = "Deploying"
	PhaseFailed    = "Failed"
	PhaseRejected  = "Rejected"
)

// Gate statuses.
const (
	GatePass    = "pass"
	GateFail    = "fail"
	GatePending = "pending"
	GateWaived  = "waived"
	GateSkipped = "skipped"
)

// PromotionSpec is what was asked of a Promotion.
type PromotionSpec struct {
	App          string     `json:"app"`
	Version      string     `json:"version"`
	Release      string     `json:"release"`
	Pipeline     string     `json:"pipeline"`
	From         string     `json:"from,omitempty"`
	To           string     `json:"to"`
	Emergency    *Emergency `json:"emergency,omitempty"`
	RequestedBy  string     `json:"requestedBy"`
	RollbackPlan string     `json:"rollbackPlan,omitempty"`
}

// PromotionStatus is the outcome of a Promotion's last evaluation.
type PromotionStatus struct {
	Phase          string       `json:"phase"`
	Message        string       `json:"message,omitempty"`
	PolicyRevision int64        `json:"policyRevision"`
	Gates          []GateResult `json:"gates"`
	Evaluations    int          `json:"evaluations"`
	EvaluatedAt    time.Time    `json:"evaluatedAt"`
	CompletedAt    *time.Time   `json:"completedAt,omitempty"`
	Review         string       `json:"review,omitempty"`
}

// GateResult is one gate's verdict.
type GateResult struct {
	Gate     string   `json:"gate"`
	Type     string   `json:"type"`
	Status   string   `json:"status"`
	Reasons  []string `json:"reasons,omitempty"`
	Fix      string   `json:"fix,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
	Security bool     `json:"security,omitempty"`
}

// DecodePromotion reads a Promotion object's spec and status.
func DecodePromotion(o *resource.Object) (*PromotionSpec, *PromotionStatus, error) {
	return decodeObject[PromotionSpec, PromotionStatus](o)
}

// decodeObject reads an object's spec and status into the client's view
// types, leniently: the server may add fields.
func decodeObject[S, T any](o *resource.Object) (*S, *T, error) {
	var (
		spec S
		st   T
	)
	if err := json.Unmarshal(o.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("%s: decode spec: %w", o.Ref(), err)
	}
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &st); err != nil {
			return nil, nil, fmt.Errorf("%s: decode status: %w", o.Ref(), err)
		}
	}
	return &spec, &st, nil
}

// EvidenceSpec is the spec of an Evidence object.
type EvidenceSpec struct {
	App            string         `json:"app"`
	Version        string         `json:"version"`
	Release        string         `json:"release"`
	Type           string         `json:"type"`
	Suite          string         `json:"suite,omitempty"`
	Name           string         `json:"name"`
	Digest         string         `json:"digest"`
	Size           int64          `json:"size"`
	Format         string         `json:"format"`
	Facts          map[string]any `json:"facts"`
	Findings       int            `json:"findings,omitempty"`
	FindingsDigest string         `json:"findingsDigest,omitempty"`
	Subjects       []string       `json:"subjects,omitempty"`
	Trusted        bool           `json:"trusted"`
	Signer         string         `json:"signer,omitempty"`
	KeyID          string         `json:"keyId,omitempty"`
	TrustReason    string         `json:"trustReason,omitempty"`
	SubmittedBy    string         `json:"submittedBy"`
}

// DecodeEvidence reads an Evidence object's spec.
func DecodeEvidence(o *resource.Object) (*EvidenceSpec, error) {
	spec, _, err := decodeObject[EvidenceSpec, struct{}](o)
	return spec, err
}

// KeyRequest registers a CI signing key.
type KeyRequest struct {
	Name        string `json:"name"`
	PublicKey   string `json:"publicKey"` // PEM, ed25519 or ECDSA P-256
	Identity    string `json:"identity,omitempty"`
	Description string `json:"description,omitempty"`
}

// AddKey registers a signing key and returns the Key object, whose spec
// holds the derived algorithm and key id.
func (c *Client) AddKey(ctx context.Context, r KeyRequest) (*resource.Object, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/keys", body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// ListKeys returns the registered signing keys.
func (c *Client) ListKeys(ctx context.Context) ([]*resource.Object, error) {
	l, err := c.List(ctx, "keys", "")
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// RemoveKey deletes a signing key; evidence it signed keeps its recorded
// trust. reason is recorded in the audit log.
func (c *Client) RemoveKey(ctx context.Context, name, reason string) error {
	_, err := c.Delete(ctx, "keys", name, 0, reason)
	return err
}

// ListReviews returns the Review objects emergency promotions opened.
func (c *Client) ListReviews(ctx context.Context) ([]*resource.Object, error) {
	l, err := c.List(ctx, "reviews", "")
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// ReviewSpec is the spec of a Review object.
type ReviewSpec struct {
	Promotion   string         `json:"promotion"`
	App         string         `json:"app"`
	Version     string         `json:"version"`
	Environment string         `json:"environment"`
	Incident    string         `json:"incident"`
	Reason      string         `json:"reason"`
	RequestedBy string         `json:"requestedBy"`
	ApprovedBy  []string       `json:"approvedBy,omitempty"`
	WaivedGates []string       `json:"waivedGates,omitempty"`
	Chain       map[string]int `json:"chain,omitempty"`
	DueAt       time.Time      `json:"dueAt"`
}

// CompleteReview records the caller's sign-off of a post-emergency review
// with an outcome (accepted, follow-up or reverted) and a reason, and
// returns the Review.
func (c *Client) CompleteReview(ctx context.Context, name, outcome, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/reviews/"+seg(name)+"/complete", map[string]string{"outcome": outcome, "reason": reason})
}
