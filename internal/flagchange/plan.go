package flagchange

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// A progressive release plan of a flag in an environment whose flag
// changes need approval is approved by approving its first step: applying
// the FlagPlan proposes that step as a flag change (origin "plan NAME
// start"), and the plan's later steps apply without approvals once it was
// applied. Windows still hold every step back.

// planStart is the origin of the change that starts (and approves) a plan.
func planStart(name string) string { return "plan " + name + " start" }

// PlanGuard is catalog's hook for FlagPlan objects: it writes the plan
// and, where the flag's environment needs approvals, proposes the plan's
// first step for approval in the same transaction.
func PlanGuard(ctx context.Context, tx store.Tx, actor store.Actor, cur, next *resource.Object) (catalog.Result, error) {
	if next == nil {
		if err := tx.Delete(ctx, cur.Kind, cur.Metadata.Name, 0); err != nil {
			return catalog.Result{}, err
		}
		return catalog.Result{Kind: cur.Kind, Name: cur.Metadata.Name, Action: catalog.Deleted}, nil
	}
	res := catalog.Result{Kind: next.Kind, Name: next.Metadata.Name, Action: catalog.Created}
	var out *resource.Object
	var err error
	if cur == nil {
		out, err = tx.Create(ctx, next)
	} else {
		upd := cur.DeepCopy()
		upd.Spec, upd.Metadata.Labels, upd.Metadata.Revision = next.Spec, next.Metadata.Labels, 0
		out, err = tx.Update(ctx, upd)
		res.Action = catalog.Configured
	}
	if err != nil {
		return catalog.Result{}, err
	}
	res.Revision = out.Metadata.Revision
	var ps plan.Spec
	if err := next.DecodeSpec(&ps); err != nil {
		return catalog.Result{}, err
	}
	fo, err := tx.Get(ctx, flag.KindName, ps.Flag)
	if errors.Is(err, store.ErrNotFound) {
		return catalog.Result{}, &catalog.PolicyError{Msg: fmt.Sprintf("%s: flag %s does not exist; apply the flag first (a plan releases an existing flag)", next.Ref(), ps.Flag)}
	} else if err != nil {
		return catalog.Result{}, err
	}
	var fs flag.Spec
	if err := fo.DecodeSpec(&fs); err != nil {
		return catalog.Result{}, err
	}
	pol, err := PolicyFor(ctx, tx, fs.App, fs.Environment)
	if err != nil || len(pol.Require) == 0 {
		return res, err
	}
	if cur != nil {
		if _, approved, err := planApproval(ctx, tx, next.Metadata.Name, ps.Flag); err != nil || approved {
			return res, err // changing an approved plan: its steps stay preapproved
		}
	}
	first, err := plan.Render(ps, 0, fs)
	if err != nil {
		return catalog.Result{}, &catalog.InvalidError{Msg: fmt.Sprintf("%s: step 0: %v", next.Ref(), err)}
	}
	step := fo.DeepCopy()
	if err := step.SetSpec(first); err != nil {
		return catalog.Result{}, err
	}
	o, err := Propose(ctx, tx, actor, Request{Current: fo, Next: step, Reason: fmt.Sprintf("start of plan %s (%d steps): %s", next.Metadata.Name, len(ps.Steps), ps.Describe(0)), Origin: planStart(next.Metadata.Name)})
	if err != nil {
		return catalog.Result{}, err
	}
	res.Action, res.Change = catalog.Proposed, o.Change
	res.Message = fmt.Sprintf("the plan starts once its first step is approved: %s", o.Message)
	return res, nil
}

// planApproval finds the change that starts plan name on flagName: the
// latest one, and whether one was applied (the plan is approved).
func planApproval(ctx context.Context, r store.Reader, name, flagName string) (latest *resource.Object, approved bool, err error) {
	objs, err := r.List(ctx, Kind, resource.Selector{{Key: "flag", Op: resource.Equals, Values: []string{flagName}}})
	if err != nil {
		return nil, false, err
	}
	for _, o := range objs {
		var s Spec
		var st Status
		if err := o.DecodeSpec(&s); err != nil {
			return nil, false, err
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, false, err
		}
		if s.Origin != planStart(name) {
			continue
		}
		if st.Phase == Applied {
			approved = true
		}
		if latest == nil || o.Metadata.CreatedAt.After(latest.Metadata.CreatedAt) || (o.Metadata.CreatedAt.Equal(latest.Metadata.CreatedAt) && o.Metadata.Name > latest.Metadata.Name) {
			latest = o
		}
	}
	return latest, approved, nil
}

// ErrAwaitingApproval is wrapped by ApplyPlanned's error while the plan's
// first step waits for approval.
var ErrAwaitingApproval = errors.New("awaiting approval")

// awaiting is a plan step held back until its start is approved.
type awaiting struct{ msg string }

func (e *awaiting) Error() string { return e.msg }
func (e *awaiting) Unwrap() error { return ErrAwaitingApproval }

// planGate decides whether plan name may change flagName now: yes where
// the environment needs no approvals or the plan's start was approved; a
// pending start change makes it wait (ErrAwaitingApproval); a start
// change that was rejected, withdrawn or superseded is an error that
// pauses the plan.
func planGate(ctx context.Context, tx store.Tx, name, flagName string, fs flag.Spec) error {
	pol, err := PolicyFor(ctx, tx, fs.App, fs.Environment)
	if err != nil || len(pol.Require) == 0 {
		return err
	}
	latest, approved, err := planApproval(ctx, tx, name, flagName)
	if err != nil || approved {
		return err
	}
	if latest == nil {
		return &catalog.PolicyError{Msg: fmt.Sprintf("plan %s was never approved for %s (%s needs approvals): apply the plan again to propose its first step", name, flagName, fs.Environment)}
	}
	var st Status
	if err := latest.DecodeStatus(&st); err != nil {
		return err
	}
	if st.Phase.Final() {
		return &catalog.PolicyError{Msg: fmt.Sprintf("the start of plan %s (flag change %s) is %s: %s; delete the plan and apply it again to propose it anew", name, latest.Metadata.Name, st.Phase, st.Message)}
	}
	return &awaiting{msg: fmt.Sprintf("its start, flag change %s, %s (airlock flags approve %s --reason TEXT)", latest.Metadata.Name, strings.TrimPrefix(st.Message, "awaits "), latest.Metadata.Name)}
}
