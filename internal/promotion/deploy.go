package promotion

import (
	"context"
	"errors"
	"fmt"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
)

// deploy starts the rollout of a promotion whose gates passed, when the
// application runs in the target environment: it declares settings for it
// (spec.environments.ENV) with at least one replica, on the local or the
// Kubernetes runtime. It returns the rollout's name ("" when the
// application does not run there, or the version already serves), or why
// the promotion must wait (another rollout of the application is still
// running there).
func (s *Service) deploy(ctx context.Context, tx store.Tx, spec Spec, in *gate.Input, promo string) (string, string, error) {
	settings, ok := in.AppSpec.Environments[spec.To]
	if !ok || settings.ReplicaCount() == 0 {
		return "", "", nil
	}
	env, err := tx.Get(ctx, "Environment", spec.To)
	if err != nil {
		return "", "", err
	}
	var envSpec environment.Spec
	if err := env.DecodeSpec(&envSpec); err != nil {
		return "", "", err
	}
	switch envSpec.RuntimeName() {
	case environment.RuntimeLocal, environment.RuntimeKubernetes:
	default:
		return "", "", nil
	}
	ro, err := rollout.Start(ctx, tx, rollout.StartRequest{
		App: spec.App, Environment: spec.To, Settings: settings, Promotion: promo,
		Candidate: rollout.Version{Version: spec.Version, Release: spec.Release, Digest: in.Release.Artifact.Digest},
	})
	var pe *rollout.PolicyError
	switch {
	case errors.Is(err, rollout.ErrAlreadyServing):
		return "", "", nil // this very version already serves there
	case errors.As(err, &pe):
		return "", "waiting to deploy: " + pe.Msg, nil
	case err != nil:
		return "", "", fmt.Errorf("start the rollout of %s %s into %s: %w", spec.App, spec.Version, spec.To, err)
	}
	return ro.Metadata.Name, "", nil
}

// RolloutFinished gives the promotion that started a rollout the
// rollout's outcome, inside the transaction that records it: Succeeded
// admits the release to the environment; anything else fails the
// promotion. A rollout that rolls back a version notifies it. The
// reconciler calls it.
func (s *Service) RolloutFinished(ctx context.Context, tx store.Tx, name string, ro rollout.Spec, st rollout.Status) error {
	if st.Phase == rollout.RolledBack || (st.Phase == rollout.Failed && ro.Stable != nil) || ro.Rollback {
		ev := notify.Event{Type: notify.Rollback,
			Subject: fmt.Sprintf("%s in %s: %s", ro.App, ro.Environment, st.Phase),
			Message: st.Message,
			Data:    map[string]string{"rollout": name, "app": ro.App, "environment": ro.Environment, "version": ro.Candidate.Version, "phase": string(st.Phase)},
		}
		if ro.Rollback {
			ev.Subject = fmt.Sprintf("%s in %s rolled back to %s", ro.App, ro.Environment, ro.Candidate.Version)
		}
		if _, err := notify.Enqueue(ctx, tx, ev); err != nil {
			return err
		}
	}
	if ro.Promotion == "" {
		return nil
	}
	obj, err := tx.Get(ctx, Kind, ro.Promotion)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var spec Spec
	var pst Status
	if err := obj.DecodeSpec(&spec); err != nil {
		return err
	}
	if err := obj.DecodeStatus(&pst); err != nil {
		return err
	}
	if pst.Phase != Deploying || pst.Rollout != name {
		return nil // it already took an outcome (a rollback after success changes nothing here)
	}
	now := tx.Now()
	pst.CompletedAt = &now
	if st.Phase == rollout.Succeeded {
		pst.Phase, pst.Message = Succeeded, fmt.Sprintf("deployed by rollout %s: %s", name, st.Message)
		if err := admit(ctx, tx, spec, ro.Promotion, now); err != nil {
			return err
		}
	} else {
		pst.Phase, pst.Message = Failed, fmt.Sprintf("rollout %s ended %s: %s", name, st.Phase, st.Message)
	}
	return setPromotion(ctx, tx, obj, pst)
}

// setPromotion stores a promotion's new status and phase label.
func setPromotion(ctx context.Context, tx store.Tx, obj *resource.Object, st Status) error {
	next := obj.DeepCopy()
	if err := next.SetStatus(st); err != nil {
		return err
	}
	if next.Metadata.Labels == nil {
		next.Metadata.Labels = map[string]string{}
	}
	next.Metadata.Labels[PhaseLabel] = string(st.Phase)
	next.Metadata.Revision = 0
	_, err := tx.Update(ctx, next)
	return err
}
