package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes"
	"github.com/airlock-dev/airlock/internal/store"
)

// checkIsolation compares each Kubernetes environment's declared
// isolation with what its cluster shows (kubernetes.CheckIsolation) and
// records what is wrong as runtime-isolation violations in the
// environment's status, where airlock get environments and the reports
// show them. A cluster that cannot be reached is recorded too: an
// unchecked separation is not a kept one.
func checkIsolation(ctx context.Context, st store.Store, rts *runtimes) error {
	objs, err := st.List(ctx, "Environment", nil)
	if err != nil {
		return err
	}
	for _, o := range objs {
		var spec environment.Spec
		if err := o.DecodeSpec(&spec); err != nil {
			return err
		}
		if spec.RuntimeName() != environment.RuntimeKubernetes || spec.Kubernetes == nil {
			continue
		}
		var found []string
		t, err := rts.target(ctx, o.Metadata.Name)
		if kt, ok := t.(*kubernetes.Target); err == nil && ok {
			found, err = kubernetes.CheckIsolation(ctx, kt.Client, o.Metadata.Name, spec.Kubernetes.Namespace, string(spec.Isolation.Level))
		} else if err == nil {
			continue // changed meanwhile; the next check sees it
		}
		if err != nil {
			found = []string{fmt.Sprintf("the cluster could not be checked: %v", err)}
		}
		var observed []environment.Violation
		for _, f := range found {
			observed = append(observed, environment.Violation{Rule: environment.RuleRuntimeIsolation, Message: f, Waived: spec.Isolation.Waiver != nil})
		}
		if err := recordObserved(ctx, st, o.Metadata.Name, observed); err != nil {
			return err
		}
	}
	return nil
}

// recordObserved replaces an environment's runtime-isolation violations.
func recordObserved(ctx context.Context, st store.Store, env string, observed []environment.Violation) error {
	return st.Write(ctx, store.Actor{Name: "system:runtime", Reason: "runtime isolation check"}, func(tx store.Tx) error {
		o, err := tx.Get(ctx, "Environment", env)
		if err != nil {
			return err
		}
		var es environment.Status
		if err := o.DecodeStatus(&es); err != nil {
			return err
		}
		next := slices.DeleteFunc(slices.Clone(es.Violations), func(v environment.Violation) bool { return v.Rule == environment.RuleRuntimeIsolation })
		next = append(next, observed...)
		if slices.Equal(next, es.Violations) {
			return nil
		}
		es.Violations = next
		upd := o.DeepCopy()
		if err := upd.SetStatus(es); err != nil {
			return err
		}
		_, err = tx.Update(ctx, upd)
		return err
	})
}

// isolationLoop checks every minute until ctx ends.
func isolationLoop(ctx context.Context, st store.Store, rts *runtimes, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := checkIsolation(ctx, st, rts); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "checking runtime isolation", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
