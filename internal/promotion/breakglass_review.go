package promotion

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// BreakGlassChain reviews every use of a break-glass credential: one
// technical lead and one SRE, neither of them the person who opened it.
var BreakGlassChain = map[string]int{"tech-lead": 1, "sre": 1}

// BreakGlassReview is the review a break-glass use leaves behind.
type BreakGlassReview struct {
	// Name is the review's name; the caller makes it unique (e.g. after
	// the incident the use opened).
	Name        string
	BreakGlass  string
	Environment string
	Incident    string
	Reason      string
	// OpenedBy is who opened the credential: they may not review it.
	OpenedBy string
}

// OpenBreakGlassReview opens, in tx, the review of a break-glass use, due
// ReviewDue after the transaction's time, with BreakGlassChain as its
// chain, and sends the review.due notification. It returns the review's
// name. The review carries no application, so an overdue one blocks no
// promotion: it is reported like every overdue review.
func OpenBreakGlassReview(ctx context.Context, tx store.Tx, br BreakGlassReview) (string, error) {
	now := tx.Now()
	chain := maps.Clone(BreakGlassChain)
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: ReviewKind, Metadata: resource.Metadata{
		Name:   br.Name,
		Labels: map[string]string{"environment": br.Environment, "breakglass": labelValue(br.BreakGlass), PhaseLabel: string(ReviewOpen)},
	}}
	rs := ReviewSpec{
		Environment: br.Environment, Incident: br.Incident, Reason: br.Reason, RequestedBy: br.OpenedBy,
		Chain: chain, DueAt: now.Add(ReviewDue), BreakGlass: br.BreakGlass,
	}
	if err := obj.SetSpec(rs); err != nil {
		return "", err
	}
	if err := obj.SetStatus(ReviewStatus{Phase: ReviewOpen, Missing: approval.Describe(chain)}); err != nil {
		return "", err
	}
	if _, err := tx.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("open review of break-glass %s: %w", br.BreakGlass, err)
	}
	if _, err := notify.Enqueue(ctx, tx, notify.Event{
		Type:    notify.ReviewDue,
		Subject: fmt.Sprintf("review of %s due by %s", rs.Subject(), rs.DueAt.UTC().Format(time.RFC3339)),
		Message: fmt.Sprintf("%s opened break-glass %s in %s (incident %s: %s); the approval chain (%s) must review it: airlock review complete %s --outcome accepted|follow-up|reverted --reason TEXT",
			br.OpenedBy, br.BreakGlass, br.Environment, br.Incident, br.Reason, approval.Describe(chain), obj.Metadata.Name),
		Data: map[string]string{"review": obj.Metadata.Name, "breakGlass": br.BreakGlass, "environment": br.Environment,
			"incident": br.Incident, "dueAt": rs.DueAt.UTC().Format(time.RFC3339), "chain": approval.Describe(chain)},
	}); err != nil {
		return "", fmt.Errorf("notify review due for break-glass %s: %w", br.BreakGlass, err)
	}
	return obj.Metadata.Name, nil
}
