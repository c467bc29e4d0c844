package promotion

import (
	"context"
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// ReviewSpec is the post-incident review an emergency promotion leaves
// behind: what was promoted, under which incident, and which gates were
// waived to do it.
type ReviewSpec struct {
	Promotion   string    `json:"promotion"`
	App         string    `json:"app"`
	Version     string    `json:"version"`
	Environment string    `json:"environment"`
	Incident    string    `json:"incident"`
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requestedBy"`
	WaivedGates []string  `json:"waivedGates,omitempty"`
	DueAt       time.Time `json:"dueAt"`
}

// ReviewPhase is a review's state.
type ReviewPhase string

// Review phases. Completing a review is the approvals work's; here a review
// opens and, past its deadline, is flagged overdue.
const (
	ReviewOpen ReviewPhase = "Open"
)

// ReviewStatus is what the system records of a review.
type ReviewStatus struct {
	Phase     ReviewPhase `json:"phase"`
	Overdue   bool        `json:"overdue"`
	OverdueAt *time.Time  `json:"overdueAt,omitempty"`
}

func openReview(ctx context.Context, tx store.Tx, promo string, spec Spec, results []gate.Result, now time.Time) (string, error) {
	var waived []string
	for _, r := range results {
		if r.Status == gate.StatusWaived {
			waived = append(waived, r.Gate)
		}
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: ReviewKind, Metadata: resource.Metadata{
		Name:   promo,
		Labels: map[string]string{"app": spec.App, "environment": spec.To, "promotion": labelValue(promo)},
	}}
	if err := obj.SetSpec(ReviewSpec{
		Promotion: promo, App: spec.App, Version: spec.Version, Environment: spec.To,
		Incident: spec.Emergency.Incident, Reason: spec.Emergency.Reason, RequestedBy: spec.RequestedBy,
		WaivedGates: waived, DueAt: now.Add(ReviewDue),
	}); err != nil {
		return "", err
	}
	if err := obj.SetStatus(ReviewStatus{Phase: ReviewOpen}); err != nil {
		return "", err
	}
	if _, err := tx.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("open review for %s: %w", promo, err)
	}
	return obj.Metadata.Name, nil
}

func labelValue(s string) string {
	if len(s) > 63 {
		return s[:63]
	}
	return s
}

// FlagOverdue marks every open review past its deadline as overdue, each
// change audited as actor. It returns how many it flagged. Reconcilers call
// it on a timer with an injected clock.
func (s *Service) FlagOverdue(ctx context.Context, actor store.Actor) (int, error) {
	// Most ticks find nothing to do: look before taking a write slot.
	open, err := s.store.List(ctx, ReviewKind, nil)
	if err != nil {
		return 0, err
	}
	due := false
	for _, o := range open {
		var st ReviewStatus
		if err := o.DecodeStatus(&st); err == nil && st.Phase == ReviewOpen && !st.Overdue {
			due = true
			break
		}
	}
	if !due {
		return 0, nil
	}
	n := 0
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		n = 0
		objs, err := tx.List(ctx, ReviewKind, nil)
		if err != nil {
			return err
		}
		for _, o := range objs {
			var spec ReviewSpec
			var st ReviewStatus
			if err := o.DecodeSpec(&spec); err != nil {
				return err
			}
			if err := o.DecodeStatus(&st); err != nil {
				return err
			}
			now := tx.Now()
			if st.Phase != ReviewOpen || st.Overdue || now.Before(spec.DueAt) {
				continue
			}
			st.Overdue, st.OverdueAt = true, &now
			if err := o.SetStatus(st); err != nil {
				return err
			}
			o.Metadata.Revision = 0
			if _, err := tx.Update(ctx, o); err != nil {
				return err
			}
			if _, err := notify.Enqueue(ctx, tx, notify.Event{
				Type:    notify.ReviewOverdue,
				Subject: fmt.Sprintf("review of %s is overdue", spec.Promotion),
				Message: fmt.Sprintf("the post-emergency review of %s %s in %s (incident %s) was due %s and is not complete", spec.App, spec.Version, spec.Environment, spec.Incident, spec.DueAt.UTC().Format(time.RFC3339)),
				Data:    map[string]string{"review": o.Metadata.Name, "promotion": spec.Promotion, "app": spec.App, "environment": spec.Environment, "incident": spec.Incident, "dueAt": spec.DueAt.UTC().Format(time.RFC3339)},
			}); err != nil {
				return fmt.Errorf("notify overdue review %s: %w", o.Metadata.Name, err)
			}
			n++
		}
		return nil
	})
	return n, err
}
