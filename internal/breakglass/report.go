package breakglass

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Credential states, as Summary.Credential says them.
const (
	CredentialNone        = "none: airlock breakglass store NAME --from-file FILE"
	CredentialStored      = "stored"
	CredentialOpened      = "opened"
	CredentialRotationDue = "rotation due: store a new credential"
	CredentialRotating    = "rotating through its broker"
)

// Summary is one break-glass as a list shows it. It carries no sealed
// value.
type Summary struct {
	Name        string     `json:"name"`
	Environment string     `json:"environment"`
	Description string     `json:"description,omitempty"`
	ValidFor    string     `json:"validFor"`
	Broker      string     `json:"broker,omitempty"`
	Credential  string     `json:"credential"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	StoredAt    *time.Time `json:"storedAt,omitempty"`
	OpenedAt    *time.Time `json:"openedAt,omitempty"`
	OpenedBy    string     `json:"openedBy,omitempty"`
	ValidUntil  *time.Time `json:"validUntil,omitempty"`
	Incident    string     `json:"incident,omitempty"`
	Review      string     `json:"review,omitempty"`
	RotationDue bool       `json:"rotationDue"`
	// RotationError is the last failed rotation or revocation, retried
	// with backoff.
	RotationError string `json:"rotationError,omitempty"`
	LastDrill     *Drill `json:"lastDrill,omitempty"`
	// DrillOverdue: no successful drill within drillEvery (or never).
	DrillOverdue bool   `json:"drillOverdue"`
	DrillEvery   string `json:"drillEvery"`
}

// List summarizes every break-glass in r as of now, by name.
func List(ctx context.Context, r store.Reader, now time.Time) ([]Summary, error) {
	objs, err := r.List(ctx, Kind, nil)
	if err != nil {
		return nil, fmt.Errorf("list break-glasses: %w", err)
	}
	out := make([]Summary, 0, len(objs))
	for _, o := range objs {
		var spec Spec
		var st Status
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, fmt.Errorf("break-glass %s: %w", o.Metadata.Name, err)
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, fmt.Errorf("break-glass %s: %w", o.Metadata.Name, err)
		}
		sm := Summary{
			Name: o.Metadata.Name, Environment: spec.Environment, Description: spec.Description, ValidFor: spec.ValidFor,
			Fingerprint: st.Fingerprint, StoredAt: st.StoredAt, OpenedAt: st.OpenedAt, OpenedBy: st.OpenedBy,
			ValidUntil: st.ValidUntil, Incident: st.Incident, Review: st.Review, RotationDue: st.RotationDue,
			LastDrill: st.LastDrill, DrillOverdue: drillOverdue(spec, st, now), DrillEvery: spec.drillEveryText(),
		}
		if spec.Broker != nil {
			sm.Broker = spec.Broker.Type
		}
		if st.Rotation != nil {
			sm.RotationError = st.Rotation.LastError
		}
		expired := st.ValidUntil != nil && !now.Before(*st.ValidUntil)
		switch {
		case st.Sealed == "":
			sm.Credential = CredentialNone
		case st.OpenedAt != nil && expired && spec.Broker == nil:
			sm.Credential = CredentialRotationDue
		case st.OpenedAt != nil && expired:
			sm.Credential = CredentialRotating
		case st.OpenedAt != nil:
			sm.Credential = CredentialOpened
		default:
			sm.Credential = CredentialStored
		}
		out = append(out, sm)
	}
	return out, nil
}

func drillOverdue(spec Spec, st Status, now time.Time) bool {
	return st.LastSuccessfulDrill == nil || now.Sub(*st.LastSuccessfulDrill) > spec.drillEvery()
}

// Finding is a break-glass whose drill is overdue.
type Finding struct {
	BreakGlass  string `json:"breakGlass"`
	Environment string `json:"environment"`
	// LastSuccessfulDrill is nil when none ever passed.
	LastSuccessfulDrill *time.Time `json:"lastSuccessfulDrill,omitempty"`
	DrillEvery          string     `json:"drillEvery"`
	// Message says what is wrong and what fixes it.
	Message string `json:"message"`
}

// Overdue returns, by name, every break-glass in r whose last successful
// drill is older than its drillEvery (90 days by default) as of now, or
// that was never drilled successfully. The compliance report calls it.
func Overdue(ctx context.Context, r store.Reader, now time.Time) ([]Finding, error) {
	objs, err := r.List(ctx, Kind, nil)
	if err != nil {
		return nil, fmt.Errorf("list break-glasses: %w", err)
	}
	out := []Finding{}
	for _, o := range objs {
		var spec Spec
		var st Status
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, fmt.Errorf("break-glass %s: %w", o.Metadata.Name, err)
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, fmt.Errorf("break-glass %s: %w", o.Metadata.Name, err)
		}
		if !drillOverdue(spec, st, now) {
			continue
		}
		f := Finding{BreakGlass: o.Metadata.Name, Environment: spec.Environment, LastSuccessfulDrill: st.LastSuccessfulDrill, DrillEvery: spec.drillEveryText()}
		if st.LastSuccessfulDrill == nil {
			f.Message = fmt.Sprintf("break-glass %s (%s) has never been drilled successfully; run airlock breakglass drill %s", f.BreakGlass, f.Environment, f.BreakGlass)
		} else {
			f.Message = fmt.Sprintf("break-glass %s (%s) was last drilled successfully %s, more than %s ago; run airlock breakglass drill %s",
				f.BreakGlass, f.Environment, st.LastSuccessfulDrill.UTC().Format(time.RFC3339), f.DrillEvery, f.BreakGlass)
		}
		out = append(out, f)
	}
	return out, nil
}

// Use is one open of a break-glass, as its review records it.
type Use struct {
	BreakGlass  string    `json:"breakGlass"`
	Environment string    `json:"environment"`
	OpenedBy    string    `json:"openedBy"`
	OpenedAt    time.Time `json:"openedAt"`
	Reason      string    `json:"reason"`
	Incident    string    `json:"incident"`
	Review      string    `json:"review"`
	// ReviewPhase is Open or Completed; ReviewOutcome is set once completed.
	ReviewPhase   string `json:"reviewPhase"`
	ReviewOutcome string `json:"reviewOutcome,omitempty"`
	ReviewOverdue bool   `json:"reviewOverdue,omitempty"`
}

// Uses returns every open of a break-glass at or after since, in
// environment env ("" for all), oldest first. It reads the reviews the
// opens left behind, which are kept for good (status.history is bounded),
// so the access report can put break-glass uses beside granted access.
func Uses(ctx context.Context, r store.Reader, env string, since time.Time) ([]Use, error) {
	sel := resource.Selector{{Key: "breakglass", Op: resource.Exists}}
	if env != "" {
		sel = append(sel, resource.Requirement{Key: "environment", Op: resource.Equals, Values: []string{env}})
	}
	objs, err := r.List(ctx, promotion.ReviewKind, sel)
	if err != nil {
		return nil, fmt.Errorf("list break-glass reviews: %w", err)
	}
	out := []Use{}
	for _, o := range objs {
		var spec promotion.ReviewSpec
		var st promotion.ReviewStatus
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, fmt.Errorf("review %s: %w", o.Metadata.Name, err)
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, fmt.Errorf("review %s: %w", o.Metadata.Name, err)
		}
		if spec.BreakGlass == "" {
			continue
		}
		opened := spec.DueAt.Add(-promotion.ReviewDue)
		if opened.Before(since) {
			continue
		}
		out = append(out, Use{
			BreakGlass: spec.BreakGlass, Environment: spec.Environment, OpenedBy: spec.RequestedBy, OpenedAt: opened,
			Reason: spec.Reason, Incident: spec.Incident, Review: o.Metadata.Name,
			ReviewPhase: string(st.Phase), ReviewOutcome: string(st.Outcome), ReviewOverdue: st.Overdue,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenedAt.Before(out[j].OpenedAt) })
	return out, nil
}
