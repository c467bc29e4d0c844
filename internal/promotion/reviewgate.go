package promotion

import (
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/gate"
)

// ReviewsGateType is the gate that blocks an application's promotions
// while a post-emergency review of it is overdue. Production stages get it
// without declaring it (Stage.BlockOnOverdueReview turns that off); any
// stage may declare it.
const ReviewsGateType = "reviews"

// ReviewsGateName is the name of the reviews gate production stages get
// without declaring it.
const ReviewsGateName = "overdue-reviews"

// OverdueReview is an open review past its deadline, as the reviews gate
// sees it in gate.Input.Extra[ReviewsGateType] ([]OverdueReview).
type OverdueReview struct {
	Name      string
	Subject   string // e.g. "emergency promotion P"
	Promotion string
	Incident  string
	DueAt     time.Time
	Missing   string
}

func init() {
	gate.Register(ReviewsGateType, buildReviewsGate)
}

type reviewsGate struct{ spec gate.Spec }

func buildReviewsGate(s gate.Spec) (gate.Gate, error) {
	for _, f := range gate.SetFields(s) {
		return nil, &gate.FieldError{Field: f, Msg: f + " does not apply to a reviews gate, which takes only name and message"}
	}
	if s.RequireTrusted != nil {
		return nil, &gate.FieldError{Field: "requireTrusted", Msg: "requireTrusted does not apply to a reviews gate, which takes only name and message"}
	}
	if s.When != "" {
		return nil, &gate.FieldError{Field: "when", Msg: "when does not apply to a reviews gate, which takes only name and message"}
	}
	if s.Name == "" {
		s.Name = s.DefaultName()
	}
	return reviewsGate{spec: s}, nil
}

func (g reviewsGate) Spec() gate.Spec { return g.spec }

// Evaluate fails while the application has an overdue review. It is not a
// security gate: an emergency promotion passes it (waived, and recorded in
// its own review).
func (g reviewsGate) Evaluate(in *gate.Input) gate.Result {
	r := gate.Result{Gate: g.spec.Name, Type: ReviewsGateType}
	overdue, ok := in.Extra[ReviewsGateType].([]OverdueReview)
	if in.Extra[ReviewsGateType] != nil && !ok {
		r.Status, r.Reasons, r.Fix = gate.StatusFail, []string{fmt.Sprintf("the reviews were handed to the gate as %T", in.Extra[ReviewsGateType])}, "report this as a bug in airlock"
		return r
	}
	if len(overdue) == 0 {
		r.Status, r.Reasons = gate.StatusPass, []string{fmt.Sprintf("no post-emergency review of %s is overdue", in.App)}
		return r
	}
	r.Status = gate.StatusFail
	if g.spec.Message != "" {
		r.Reasons = append(r.Reasons, g.spec.Message)
	}
	for _, o := range overdue {
		r.Reasons = append(r.Reasons, fmt.Sprintf("review %s of %s (incident %s) was due %s and is not complete (missing: %s)",
			o.Name, o.Subject, o.Incident, o.DueAt.UTC().Format(time.RFC3339), o.Missing))
	}
	r.Fix = fmt.Sprintf("the approval chain completes it: airlock review complete %s --outcome accepted|follow-up|reverted --reason TEXT", overdue[0].Name)
	return r
}
