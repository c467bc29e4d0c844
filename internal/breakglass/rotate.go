package breakglass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/store"
)

// Backoff bounds between rotation attempts after a failure.
const (
	RetryBase = 30 * time.Second
	RetryMax  = time.Hour
)

// backoff is the wait after the n-th consecutive failure (n >= 1).
func backoff(n int) time.Duration {
	d := RetryBase
	for i := 1; i < n && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}

// CredentialLife is how long a broker-issued break-glass credential is
// valid (the grant's NotAfter): twice its drillEvery. RunOnce renews it
// once half of that is gone, so it never lapses unnoticed.
func CredentialLife(spec Spec) time.Duration { return 2 * spec.drillEvery() }

// RunResult is what one rotation pass did, by break-glass name.
type RunResult struct {
	// Rotated got a new credential from their broker.
	Rotated []string
	// Revoked had a replaced credential revoked.
	Revoked []string
	// Due passed their window with no broker to rotate them: they are
	// reported until a new credential is stored. Only those newly found
	// due are listed.
	Due []string
	// Failed could not be rotated or revoked this time; the error is
	// recorded in their status.rotation and retried with backoff.
	Failed []string
}

// RunOnce rotates every break-glass whose opened credential's window has
// passed, and renews a broker-issued credential not in use once half its
// life (CredentialLife) is gone: through its broker (grant a new credential "bg-<name>-<n>",
// seal and store it, then revoke the previous one), or, with no broker,
// by marking the rotation due and reporting it until airlock breakglass
// store replaces the credential. Failures are recorded with the error and
// retried with backoff (RetryBase doubling to RetryMax); a pending
// revocation is never dropped. The returned error joins the failures.
func (s *Service) RunOnce(ctx context.Context) (RunResult, error) {
	var res RunResult
	objs, err := s.store.List(ctx, Kind, nil)
	if err != nil {
		return res, fmt.Errorf("list break-glasses: %w", err)
	}
	var errs []error
	for _, o := range objs {
		name := o.Metadata.Name
		var spec Spec
		var st Status
		if err := o.DecodeSpec(&spec); err != nil {
			errs = append(errs, fmt.Errorf("break-glass %s: %w", name, err))
			continue
		}
		if err := o.DecodeStatus(&st); err != nil {
			errs = append(errs, fmt.Errorf("break-glass %s: %w", name, err))
			continue
		}
		now := s.now()
		if r := st.Rotation; r != nil && !r.NextAttempt.IsZero() && now.Before(r.NextAttempt) {
			continue // backing off
		}
		expired := st.OpenedAt != nil && st.ValidUntil != nil && !now.Before(*st.ValidUntil)
		// A broker-issued credential is renewed once half its life is
		// gone, unless it is in use (opened, within its window).
		renew := st.OpenedAt == nil && st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Add(-spec.drillEvery()))
		switch {
		case expired && spec.Broker == nil:
			if st.RotationReported {
				break
			}
			if err := s.markDue(ctx, name); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Due = append(res.Due, name)
		case expired || renew || (st.Rotation != nil && st.Rotation.Grant != ""):
			if spec.Broker == nil {
				break
			}
			if err := s.rotate(ctx, name, spec); err != nil {
				res.Failed = append(res.Failed, name)
				errs = append(errs, s.fail(ctx, name, fmt.Errorf("rotate break-glass %s: %w", name, err)))
				continue
			}
			res.Rotated = append(res.Rotated, name)
		}
		revoked, err := s.revokePending(ctx, name)
		if err != nil {
			if !containsName(res.Failed, name) {
				res.Failed = append(res.Failed, name)
			}
			errs = append(errs, s.fail(ctx, name, fmt.Errorf("revoke the replaced credential of break-glass %s: %w", name, err)))
			continue
		}
		if revoked {
			res.Revoked = append(res.Revoked, name)
		}
	}
	return res, errors.Join(errs...)
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Loop runs RunOnce every interval until ctx ends, reporting errors to
// onErr (which may be nil).
func (s *Service) Loop(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func system(reason string) store.Actor { return store.Actor{Name: SystemActor, Reason: reason} }

// markDue records that an open's window passed with no broker to rotate
// the credential.
func (s *Service) markDue(ctx context.Context, name string) error {
	return s.store.Write(ctx, system("break-glass window over: rotation due, no broker"), func(tx store.Tx) error {
		obj, _, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.OpenedAt == nil || st.RotationReported {
			return nil
		}
		st.RotationDue, st.RotationReported = true, true
		st.record(Event{At: tx.Now(), Action: "rotation-due", By: SystemActor, Detail: "no broker: store a new credential (airlock breakglass store " + name + " --from-file FILE)"})
		return save(ctx, tx, obj, st)
	})
}

// rotate issues a new credential through the broker and stores it sealed,
// queueing the previous one's revocation. The grant ID is recorded before
// the broker is called, so a retry after a crash asks for the same grant.
func (s *Service) rotate(ctx context.Context, name string, spec Spec) error {
	var id string
	var gen int
	err := s.store.Write(ctx, system("break-glass rotation started"), func(tx store.Tx) error {
		obj, _, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Rotation != nil && st.Rotation.Grant != "" {
			id, gen = st.Rotation.Grant, st.Generation+1
			return nil // a grant already in progress: ask for it again
		}
		gen = st.Generation + 1
		id = grantID(name, gen)
		if st.Rotation == nil {
			st.Rotation = &Rotation{}
		}
		st.Rotation.Grant = id
		return save(ctx, tx, obj, st)
	})
	if err != nil {
		return err
	}
	b, err := broker.New(spec.Broker.Type, spec.Broker.Config, s.Env)
	if err != nil {
		return fmt.Errorf("build broker %s: %w", spec.Broker.Type, err)
	}
	now := s.now()
	issued, err := b.Grant(ctx, broker.Grant{
		ID: id, Requester: SystemActor, Environment: spec.Environment, Resource: name, Role: "break-glass",
		Grants: spec.Broker.Grants, NotBefore: now, NotAfter: now.Add(CredentialLife(spec)),
	})
	if err != nil {
		return fmt.Errorf("broker %s grant %s: %w", spec.Broker.Type, id, err)
	}
	cred, err := json.Marshal(issued.Credential)
	if err != nil {
		return err
	}
	if len(issued.Credential) == 1 {
		for _, v := range issued.Credential {
			cred = []byte(v) // a single value (a DSN, a password) is the credential itself
		}
	}
	sealed, err := s.sealer.Seal(sealName(name), cred)
	if err != nil {
		return err
	}
	fp := Fingerprint(cred)
	clear(cred)
	return s.store.Write(ctx, system("break-glass credential rotated through broker "+spec.Broker.Type+" ("+fp+")"), func(tx store.Tx) error {
		obj, _, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Rotation == nil || st.Rotation.Grant != id {
			if st.Handle == issued.Handle {
				return nil // another replica finished this very grant: it is the current credential
			}
			// A credential was stored by hand meanwhile: the one just
			// issued replaces nothing and is revoked.
			queueRevoke(&st, name, gen, issued.Handle)
			return save(ctx, tx, obj, st)
		}
		t := tx.Now()
		if st.Handle != "" {
			queueRevoke(&st, name, st.Generation, st.Handle)
		}
		expires := now.Add(CredentialLife(spec))
		st.Sealed, st.Fingerprint, st.StoredAt, st.StoredBy, st.Handle, st.Generation, st.ExpiresAt = sealed, fp, &t, SystemActor, issued.Handle, gen, &expires
		st.Rotation.Grant, st.Rotation.Attempts, st.Rotation.LastError, st.Rotation.NextAttempt = "", 0, "", time.Time{}
		if len(st.Rotation.Revoke) == 0 {
			st.Rotation = nil
		}
		clearOpen(&st)
		st.record(Event{At: t, Action: "rotated", By: SystemActor, Detail: fmt.Sprintf("%s through broker %s (grant %s)", fp, spec.Broker.Type, id)})
		return save(ctx, tx, obj, st)
	})
}

// revokePending revokes the replaced credentials waiting for it, oldest
// first, recording each success; it stops at the first failure.
func (s *Service) revokePending(ctx context.Context, name string) (bool, error) {
	obj, err := s.store.Get(ctx, Kind, name)
	if err != nil {
		return false, err
	}
	var spec Spec
	var st Status
	if err := obj.DecodeSpec(&spec); err != nil {
		return false, err
	}
	if err := obj.DecodeStatus(&st); err != nil {
		return false, err
	}
	if st.Rotation == nil || len(st.Rotation.Revoke) == 0 {
		return false, nil
	}
	if spec.Broker == nil {
		return false, fmt.Errorf("%d replaced credential(s) (first: grant %s) must be revoked but the break-glass no longer names a broker: declare it again", len(st.Rotation.Revoke), st.Rotation.Revoke[0].Grant)
	}
	b, err := broker.New(spec.Broker.Type, spec.Broker.Config, s.Env)
	if err != nil {
		return false, fmt.Errorf("build broker %s: %w", spec.Broker.Type, err)
	}
	revoked := false
	for _, pr := range st.Rotation.Revoke {
		g := broker.Grant{ID: pr.Grant, Requester: SystemActor, Environment: spec.Environment, Resource: name, Role: "break-glass", Grants: spec.Broker.Grants}
		if err := b.Revoke(ctx, g, pr.Handle); err != nil {
			return revoked, fmt.Errorf("broker %s revoke %s: %w", spec.Broker.Type, pr.Grant, err)
		}
		err = s.store.Write(ctx, system("replaced break-glass credential revoked through broker "+spec.Broker.Type), func(tx store.Tx) error {
			obj, _, st, err := load(ctx, tx, name)
			if err != nil {
				return err
			}
			if st.Rotation == nil {
				return nil
			}
			i := slices.Index(st.Rotation.Revoke, pr)
			if i < 0 {
				return nil
			}
			st.Rotation.Revoke = slices.Delete(st.Rotation.Revoke, i, i+1)
			st.Rotation.Attempts, st.Rotation.LastError, st.Rotation.NextAttempt = 0, "", time.Time{}
			if len(st.Rotation.Revoke) == 0 && st.Rotation.Grant == "" {
				st.Rotation = nil
			}
			st.record(Event{At: tx.Now(), Action: "revoked", By: SystemActor, Detail: "grant " + pr.Grant})
			return save(ctx, tx, obj, st)
		})
		if err != nil {
			return revoked, err
		}
		revoked = true
	}
	return revoked, nil
}

// fail records a failed rotation or revocation in status.rotation (the
// error, the attempt count, the next attempt) and returns cause, joined
// with any error recording it.
func (s *Service) fail(ctx context.Context, name string, cause error) error {
	err := s.store.Write(ctx, system("break-glass rotation failed; retrying with backoff"), func(tx store.Tx) error {
		obj, _, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Rotation == nil {
			st.Rotation = &Rotation{}
		}
		st.Rotation.Attempts++
		st.Rotation.LastError = truncate(cause.Error(), 1000)
		st.Rotation.NextAttempt = s.now().Add(backoff(st.Rotation.Attempts))
		return save(ctx, tx, obj, st)
	})
	if err != nil {
		return errors.Join(cause, fmt.Errorf("record the failure: %w", err))
	}
	return cause
}
