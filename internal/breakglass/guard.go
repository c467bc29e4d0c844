package breakglass

import (
	"context"
	"fmt"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Guard takes over apply and delete of BreakGlass objects
// (catalog.Service.SetGuard(Kind, Guard)), so no declarative write makes
// airlock forget a credential it still owes a revocation or an open not
// yet rotated away: such a break-glass cannot be deleted, nor lose its
// broker. Otherwise it writes as apply does, keeping the status.
func Guard(ctx context.Context, tx store.Tx, _ store.Actor, cur, next *resource.Object) (catalog.Result, error) {
	switch {
	case cur == nil:
		created, err := tx.Create(ctx, next)
		if err != nil {
			return catalog.Result{}, fmt.Errorf("create %s: %w", next.Ref(), err)
		}
		return catalog.Result{Kind: Kind, Name: next.Metadata.Name, Action: catalog.Created, Revision: created.Metadata.Revision}, nil
	case next == nil:
		var st Status
		if err := cur.DecodeStatus(&st); err != nil {
			return catalog.Result{}, err
		}
		if owed := owes(st); owed != "" {
			return catalog.Result{}, &catalog.PolicyError{Msg: fmt.Sprintf("break-glass %s cannot be deleted: %s; deleting it would forget that", cur.Metadata.Name, owed)}
		}
		if err := tx.Delete(ctx, Kind, cur.Metadata.Name, cur.Metadata.Revision); err != nil {
			return catalog.Result{}, err
		}
		return catalog.Result{Kind: Kind, Name: cur.Metadata.Name, Action: catalog.Deleted}, nil
	}
	var st Status
	var spec Spec
	if err := cur.DecodeStatus(&st); err != nil {
		return catalog.Result{}, err
	}
	if err := next.DecodeSpec(&spec); err != nil {
		return catalog.Result{}, &catalog.InvalidError{Msg: fmt.Sprintf("%s: %v", next.Ref(), err)}
	}
	if spec.Broker == nil && st.Rotation != nil && len(st.Rotation.Revoke) > 0 {
		return catalog.Result{}, &catalog.PolicyError{Msg: fmt.Sprintf("break-glass %s still owes %d revocation(s) through its broker; keep spec.broker until they are done (airlock breakglass list shows them)", cur.Metadata.Name, len(st.Rotation.Revoke))}
	}
	upd := cur.DeepCopy()
	upd.Spec, upd.Metadata.Labels, upd.Metadata.Revision = next.Spec, next.Metadata.Labels, next.Metadata.Revision
	updated, err := tx.Update(ctx, upd)
	if err != nil {
		return catalog.Result{}, fmt.Errorf("update %s: %w", next.Ref(), err)
	}
	return catalog.Result{Kind: Kind, Name: next.Metadata.Name, Action: catalog.Configured, Revision: updated.Metadata.Revision}, nil
}

// owes says what a break-glass still has to do, or "".
func owes(st Status) string {
	switch {
	case st.Rotation != nil && len(st.Rotation.Revoke) > 0:
		return fmt.Sprintf("%d replaced credential(s) are still to be revoked through its broker", len(st.Rotation.Revoke))
	case st.Rotation != nil && st.Rotation.Grant != "":
		return fmt.Sprintf("a rotation (grant %s) is in progress", st.Rotation.Grant)
	case st.OpenedAt != nil:
		return fmt.Sprintf("it was opened by %s and its credential has not been replaced (store a new one first)", st.OpenedBy)
	}
	return ""
}
