package rollout

import (
	"context"
	"fmt"
	"strconv"

	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/store"
)

// Markers returns the deployment markers a rollout's move from prev to
// next status makes: rollout.started on its first plan, rollout.step when
// the candidate's share of traffic moves while the rollout is active, and
// rollout.finished (data phase: Succeeded, Failed, Aborted or RolledBack)
// when it ends, or when a rollout that succeeded is rolled back within its
// window. One transition may make several (a first deploy that is healthy
// at once starts and finishes). It performs no I/O.
func Markers(name string, spec Spec, prev, next Status) []notify.Event {
	var out []notify.Event
	mk := func(typ, subject string) {
		out = append(out, notify.Event{
			Type:    typ,
			Subject: fmt.Sprintf("%s %s in %s: %s", spec.App, spec.Candidate.Version, spec.Environment, subject),
			Message: next.Message,
			Data: map[string]string{
				"rollout": name, "app": spec.App, "environment": spec.Environment, "version": spec.Candidate.Version,
				"step": strconv.Itoa(next.Step), "weight": strconv.Itoa(next.Weight), "phase": string(next.Phase),
				"strategy": string(spec.Strategy.Type),
			},
		})
	}
	if prev.Phase == "" && next.Phase != "" {
		from := "first deploy"
		if spec.Stable != nil {
			from = "replacing " + spec.Stable.Version
		}
		mk(notify.RolloutStarted, fmt.Sprintf("rollout started (%s, %s)", spec.Strategy.Type, from))
	}
	if prev.Phase != "" && next.Phase.Active() && next.Weight != prev.Weight {
		mk(notify.RolloutStep, fmt.Sprintf("%d%% of traffic", next.Weight))
	}
	if (prev.Phase.Active() && !next.Phase.Active()) || (prev.Phase == Succeeded && next.Phase == RolledBack) {
		mk(notify.RolloutFinished, "rollout "+finishedWord(next.Phase))
	}
	return out
}

func finishedWord(p Phase) string {
	switch p {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Aborted:
		return "aborted"
	case RolledBack:
		return "rolled back"
	}
	return string(p)
}

// enqueueMarkers queues the markers of a status change for the sinks that
// want them, inside the transaction that stores the change.
func enqueueMarkers(ctx context.Context, tx store.Tx, name string, spec Spec, prev, next Status) error {
	for _, ev := range Markers(name, spec, prev, next) {
		if _, err := notify.Enqueue(ctx, tx, ev); err != nil {
			return fmt.Errorf("queue %s for rollout %s: %w", ev.Type, name, err)
		}
	}
	return nil
}
