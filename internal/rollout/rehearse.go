package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// RehearsalFormat is the format of the evidence a rollback rehearsal
// records.
const RehearsalFormat = "airlock-rollback-rehearsal"

// Rehearsal is what a rollback rehearsal found; it is stored as the
// document of a piece of rollback evidence on the rehearsed release.
type Rehearsal struct {
	App         string    `json:"app"`
	Environment string    `json:"environment"`
	Tier        string    `json:"tier"`
	Release     string    `json:"release"`
	Version     string    `json:"version"`  // the rehearsed release
	Previous    string    `json:"previous"` // the version it rolled back to
	Passed      bool      `json:"passed"`
	Steps       []string  `json:"steps"`
	RollbackMs  int64     `json:"rollbackMs"` // from the command to the previous version serving
	RestoreMs   int64     `json:"restoreMs"`  // from the second command to the release serving again
	StartedAt   time.Time `json:"startedAt"`
	By          string    `json:"by"`
}

// Rehearser rolls a release back and forward again in a non-production
// environment, checks the previous version really serves in between, and
// records the result as evidence on the release (the rollbackTested gate
// reads it).
type Rehearser struct {
	Store   store.Store
	Service *Service
	// Probe requests the application through its router in the
	// environment and returns an error unless it answers 2xx.
	Probe   func(ctx context.Context, app, env string) error
	Timeout time.Duration // per step; default 5m
	Poll    time.Duration // default 100ms
}

// Rehearse runs a rehearsal for the current release of app in env. The
// evidence is recorded whatever the outcome; the error says why a
// rehearsal failed or could not start.
func (r *Rehearser) Rehearse(ctx context.Context, actor store.Actor, app, env string) (*Rehearsal, error) {
	envObj, err := r.Store.Get(ctx, "Environment", env)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", env, err)
	}
	var es environment.Spec
	if err := envObj.DecodeSpec(&es); err != nil {
		return nil, err
	}
	if es.Tier == environment.TierProduction {
		return nil, &PolicyError{Msg: fmt.Sprintf("%s is production: rehearse rollbacks in a non-production environment (e.g. staging)", env)}
	}
	cur, err := Current(ctx, r.Store, app, env)
	if err != nil {
		return nil, err
	}
	spec, st, err := Decode(cur)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Phase != Succeeded:
		return nil, &PolicyError{Msg: fmt.Sprintf("rollout %s is %s: rehearse once a release serves in %s", cur.Metadata.Name, st.Phase, env)}
	case spec.Stable == nil:
		return nil, &PolicyError{Msg: fmt.Sprintf("%s %s is the first version in %s: a rehearsal needs a previous version to roll back to", app, spec.Candidate.Version, env)}
	}
	reh := &Rehearsal{App: app, Environment: env, Tier: string(es.Tier), Release: spec.Candidate.Release, Version: spec.Candidate.Version,
		Previous: spec.Stable.Version, StartedAt: time.Now(), By: actor.Name}
	runErr := r.run(ctx, actor, reh, spec)
	reh.Passed = runErr == nil
	if err := r.record(ctx, actor, reh, spec.Candidate); err != nil {
		return reh, errors.Join(runErr, err)
	}
	return reh, runErr
}

func (r *Rehearser) run(ctx context.Context, actor store.Actor, reh *Rehearsal, spec Spec) error {
	step := func(format string, args ...any) { reh.Steps = append(reh.Steps, fmt.Sprintf(format, args...)) }
	t0 := time.Now()
	if _, err := r.Service.Do(ctx, actor, spec.App, spec.Environment, Rollback, "rollback rehearsal of "+spec.Candidate.Version); err != nil {
		step("rollback refused: %v", err)
		return err
	}
	if err := r.await(ctx, spec.App, spec.Environment, spec.Stable.Version); err != nil {
		step("rollback to %s: %v", spec.Stable.Version, err)
		return err
	}
	reh.RollbackMs = time.Since(t0).Milliseconds()
	step("rolled back to %s in %d ms; it serves through the router", spec.Stable.Version, reh.RollbackMs)
	t1 := time.Now()
	if _, err := r.Service.Restore(ctx, actor, spec, "rollback rehearsal: restore "+spec.Candidate.Version); err != nil {
		step("restore refused: %v", err)
		return err
	}
	if err := r.await(ctx, spec.App, spec.Environment, spec.Candidate.Version); err != nil {
		step("restore of %s: %v", spec.Candidate.Version, err)
		return err
	}
	reh.RestoreMs = time.Since(t1).Milliseconds()
	step("restored %s in %d ms", spec.Candidate.Version, reh.RestoreMs)
	return nil
}

// await waits until version serves app in env (its rollout ended and the
// router answers).
func (r *Rehearser) await(ctx context.Context, app, env, version string) error {
	timeout, poll := r.Timeout, r.Poll
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		serving, _, _, err := Serving(ctx, r.Store, app, env)
		switch {
		case err != nil:
			last = err
		case serving == nil || serving.Version != version:
			cur, _ := Current(ctx, r.Store, app, env)
			last = fmt.Errorf("%s does not serve", version)
			if cur != nil {
				if _, st, err := Decode(cur); err == nil && !st.Phase.Active() && st.Phase != Succeeded && st.Phase != RolledBack {
					return fmt.Errorf("rollout %s ended %s: %s", cur.Metadata.Name, st.Phase, st.Message)
				}
			}
		default:
			if last = r.Probe(ctx, app, env); last == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s: %v", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// record stores the rehearsal as rollback evidence on the release,
// trusted: airlock observed it itself.
func (r *Rehearser) record(ctx context.Context, actor store.Actor, reh *Rehearsal, v Version) error {
	doc, err := json.Marshal(reh)
	if err != nil {
		return err
	}
	blob, err := r.Store.PrepareBlob(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	rec := evidence.Record{
		App: reh.App, Version: reh.Version, Release: v.Release, Type: evidence.Rollback, Name: "rehearsal-" + reh.Environment,
		Digest: blob.Digest, Size: int64(len(doc)), Format: RehearsalFormat,
		Facts: map[string]any{
			"rollback.passed": reh.Passed, "rollback.environment": reh.Environment, "rollback.tier": reh.Tier,
			"rollback.previous": reh.Previous, "rollback.ms": reh.RollbackMs, "rollback.restoreMs": reh.RestoreMs,
		},
		Subjects: []string{v.Digest},
		Trusted:  true, Signer: "airlock", TrustReason: "observed by airlock's runtime during a rollback rehearsal",
		SubmittedBy: actor.Name,
	}
	sum := sha256.Sum256([]byte(v.Release + "\x00rollback\x00" + rec.Name + "\x00" + rec.Digest))
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: evidence.Kind, Metadata: resource.Metadata{
		Name:   "ev-" + hex.EncodeToString(sum[:10]),
		Labels: map[string]string{"app": reh.App, "release": v.Release, "type": string(evidence.Rollback)},
	}}
	if err := obj.SetSpec(rec); err != nil {
		return err
	}
	actor.Reason = fmt.Sprintf("rollback rehearsal in %s: passed=%v", reh.Environment, reh.Passed)
	return r.Store.Write(ctx, actor, func(tx store.Tx) error {
		if _, err := tx.Get(ctx, "Release", release.Name(reh.App, reh.Version)); err != nil {
			return err
		}
		if err := tx.PutBlob(ctx, blob); err != nil {
			return err
		}
		_, err := tx.Create(ctx, obj)
		return err
	})
}
