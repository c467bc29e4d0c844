package access

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
)

// State is where an access request stands.
type State string

// States. A request is pending until approved or denied (or it expires
// unapproved); approved until its credential is issued; active while the
// credential may be used; then expired (its time ran out) or revoked (on
// demand). A request approved whose credential could not be issued
// before its window ended expires without ever being active.
const (
	Pending  State = "pending"
	Approved State = "approved"
	Denied   State = "denied"
	Active   State = "active"
	Expired  State = "expired"
	Revoked  State = "revoked"
)

// Final reports whether nothing more happens to a request in state s,
// apart from a revocation still to retry.
func (s State) Final() bool { return s == Denied || s == Expired || s == Revoked }

// RequestSpec is what was asked, and the policy it was asked under.
type RequestSpec struct {
	Requester   string `json:"requester"`
	Environment string `json:"environment"`
	Resource    string `json:"resource"`
	Role        string `json:"role"`
	Duration    string `json:"duration"`
	Reason      string `json:"reason"`
	Incident    string `json:"incident,omitempty"`
	// PublicKey is the requester's public key, for brokers that certify
	// one (SSH).
	PublicKey string `json:"publicKey,omitempty"`
	// Require, HighRisk and Grants are the role's policy when asked.
	Require  map[string]int `json:"require"`
	HighRisk bool           `json:"highRisk,omitempty"`
	Grants   []string       `json:"grants,omitempty"`
	// PendingUntil is when an unapproved request expires.
	PendingUntil time.Time `json:"pendingUntil"`
}

// Vote is one approver's decision.
type Vote struct {
	Approver string    `json:"approver"`
	Roles    []string  `json:"roles"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Decisions.
const (
	Approve = "approve"
	Deny    = "deny"
)

// Status is everything that happened to a request.
type Status struct {
	State   State  `json:"state"`
	Votes   []Vote `json:"votes,omitempty"`
	Have    string `json:"have,omitempty"`
	Missing string `json:"missing,omitempty"`
	// NotBefore and NotAfter are the access window, set on approval.
	NotBefore *time.Time `json:"notBefore,omitempty"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`
	GrantedAt *time.Time `json:"grantedAt,omitempty"`
	// Handle is what the broker revokes (not a secret).
	Handle string `json:"handle,omitempty"`
	// Sealed is the issued credential, sealed, until the requester
	// collects it; then it is removed.
	Sealed    string     `json:"sealed,omitempty"`
	Collected *time.Time `json:"collected,omitempty"`
	// IssuingBy is the airlock process calling the broker, until
	// IssuingUntil: no other process issues meanwhile.
	IssuingBy    string     `json:"issuingBy,omitempty"`
	IssuingUntil *time.Time `json:"issuingUntil,omitempty"`
	// Issuing: failed attempts to issue, and when to try again.
	GrantAttempts int        `json:"grantAttempts,omitempty"`
	GrantError    string     `json:"grantError,omitempty"`
	NextGrant     *time.Time `json:"nextGrant,omitempty"`
	// Revoking: set once the credential must go; cleared when the broker
	// confirmed it.
	RevokePending  bool       `json:"revokePending,omitempty"`
	RevokeAttempts int        `json:"revokeAttempts,omitempty"`
	RevokeError    string     `json:"revokeError,omitempty"`
	NextRevoke     *time.Time `json:"nextRevoke,omitempty"`
	RevokedAt      *time.Time `json:"revokedAt,omitempty"`
	// EndedAt, EndedBy and EndReason say how the request ended.
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	EndedBy   string     `json:"endedBy,omitempty"`
	EndReason string     `json:"endReason,omitempty"`
	Alerts    []string   `json:"alerts,omitempty"`
	Message   string     `json:"message,omitempty"`
}

// PolicyError is a request airlock refuses (self-approval, a role the
// request does not need, a request that already ended). InvalidError is
// malformed input. The API maps them to 422 and 400.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// InvalidError is malformed input.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// duration is the request's duration; spec must be valid.
func (s RequestSpec) duration() time.Duration {
	d, _ := time.ParseDuration(s.Duration)
	return d
}

// castVote records voter's decision at now and judges the request: a
// counting denial denies it; the required approvals, by different people,
// approve it and open its window [now, now+duration). The requester may
// not vote, nor anyone twice, nor anyone holding none of the required
// roles.
func castVote(spec RequestSpec, st Status, voter string, roles []string, decision, reason string, now time.Time) (Status, error) {
	switch {
	case st.State != Pending:
		return st, &PolicyError{Msg: fmt.Sprintf("the request is %s; only a pending request can be approved or denied", st.State)}
	case voter == spec.Requester:
		return st, &PolicyError{Msg: fmt.Sprintf("%s asked for this access and may not %s it; another person holding %s must", voter, decision, approval.Describe(spec.Require))}
	case slices.ContainsFunc(st.Votes, func(v Vote) bool { return v.Approver == voter }):
		return st, &PolicyError{Msg: fmt.Sprintf("%s already voted on this request", voter)}
	}
	held := approval.Held(roles, spec.Require)
	if len(held) == 0 {
		return st, &PolicyError{Msg: fmt.Sprintf("%s holds none of the roles this access needs (%s) in %s", voter, approval.Describe(spec.Require), spec.Environment)}
	}
	st.Votes = append(slices.Clone(st.Votes), Vote{Approver: voter, Roles: held, Decision: decision, Reason: reason, At: now})
	if decision == Deny {
		st.State, st.EndedAt, st.EndedBy, st.EndReason = Denied, &now, voter, reason
		st.Message = fmt.Sprintf("denied by %s: %s", voter, reason)
		return st, nil
	}
	var holders []approval.Holder
	for _, v := range st.Votes {
		if v.Decision == Approve && v.Approver != spec.Requester {
			holders = append(holders, approval.Holder{Name: v.Approver, Roles: v.Roles})
		}
	}
	have, missing := approval.Match(spec.Require, holders)
	st.Have, st.Missing = strings.Join(have, ", "), approval.DescribeMissing(missing)
	if st.Missing != "" {
		st.Message = "awaits " + st.Missing
		return st, nil
	}
	if spec.HighRisk && len(have) < 2 {
		st.Missing, st.Message = "a second approver", "a high-risk role needs two different approvers"
		return st, nil
	}
	end := now.Add(spec.duration())
	st.State, st.NotBefore, st.NotAfter = Approved, &now, &end
	st.Message = "approved by " + st.Have + "; issuing the credential"
	return st, nil
}

// Action is what a request needs done at a moment.
type Action int

// Actions, in the order a reconciler takes them.
const (
	Nothing       Action = iota
	ExpirePending        // an unapproved request ran out of time
	Issue                // ask the broker for the credential
	Revoke               // ask the broker to revoke it (expiry or on demand)
	ExpireUnused         // approved, but never issued before its window ended
)

// Due returns what the request needs at now.
func Due(spec RequestSpec, st Status, now time.Time) Action {
	switch {
	case st.RevokePending:
		if st.NextRevoke == nil || !now.Before(*st.NextRevoke) {
			return Revoke
		}
		return Nothing
	case st.State == Pending && !now.Before(spec.PendingUntil):
		return ExpirePending
	case st.State == Approved && st.NotAfter != nil && !now.Before(*st.NotAfter):
		return ExpireUnused
	case st.State == Approved && (st.NextGrant == nil || !now.Before(*st.NextGrant)):
		return Issue
	case st.State == Active && st.NotAfter != nil && !now.Before(*st.NotAfter):
		return Revoke
	}
	return Nothing
}

// NextWake is when Due next returns something other than Nothing, or zero
// when never.
func NextWake(spec RequestSpec, st Status) time.Time {
	switch {
	case st.RevokePending:
		if st.NextRevoke != nil {
			return *st.NextRevoke
		}
		return time.Unix(0, 0)
	case st.State == Pending:
		return spec.PendingUntil
	case st.State == Approved:
		if st.NextGrant != nil && st.NotAfter != nil && st.NextGrant.Before(*st.NotAfter) {
			return *st.NextGrant
		}
		if st.NotAfter != nil {
			return *st.NotAfter
		}
	case st.State == Active && st.NotAfter != nil:
		return *st.NotAfter
	}
	return time.Time{}
}

// expirePending ends an unapproved request.
func expirePending(st Status, now time.Time) Status {
	st.State, st.EndedAt, st.EndedBy = Expired, &now, "airlock"
	st.EndReason = "not approved in time"
	st.Message = "expired before it was approved (" + st.Missing + " missing)"
	return st
}

// expireUnused ends an approved request whose credential was never issued.
func expireUnused(st Status, now time.Time) Status {
	st.State, st.EndedAt, st.EndedBy = Expired, &now, "airlock"
	st.EndReason = "the window ended before a credential could be issued"
	st.Message = st.EndReason + ": " + st.GrantError
	return st
}

// issued records the broker's credential. If the request ended meanwhile
// (revoked while the broker worked) or its window is over, the credential
// must go at once.
func issued(st Status, handle, sealed string, now time.Time) Status {
	st.Handle, st.GrantError, st.NextGrant = handle, "", nil
	if st.State != Approved || (st.NotAfter != nil && !now.Before(*st.NotAfter)) {
		st.RevokePending, st.NextRevoke = true, nil
		return st
	}
	st.State, st.GrantedAt, st.Sealed = Active, &now, sealed
	st.Message = fmt.Sprintf("active until %s", st.NotAfter.UTC().Format(time.RFC3339))
	return st
}

// backoff is the wait after n failed attempts: 1s, 2s, 4s ... at most 30s.
func backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// issueFailed records a failed issue and when to retry.
func issueFailed(st Status, err error, now time.Time) Status {
	st.GrantAttempts++
	next := now.Add(backoff(st.GrantAttempts))
	st.GrantError, st.NextGrant = err.Error(), &next
	st.Message = fmt.Sprintf("issuing the credential failed (attempt %d, next at %s): %v", st.GrantAttempts, next.UTC().Format(time.RFC3339), err)
	return st
}

// requestRevoke asks for an active (or approved, being issued) request to
// end now; a pending one ends at once.
func requestRevoke(st Status, by, reason string, now time.Time) (Status, error) {
	switch st.State {
	case Pending:
		st.State, st.EndedAt, st.EndedBy, st.EndReason = Revoked, &now, by, reason
		st.Message = "withdrawn before approval by " + by
		return st, nil
	case Approved, Active:
		st.RevokePending, st.NextRevoke = true, nil
		st.State, st.EndedAt, st.EndedBy, st.EndReason = Revoked, &now, by, reason
		st.Sealed = "" // an uncollected credential is never handed out
		st.Message = "revoked by " + by + ": " + reason
		return st, nil
	}
	return st, &PolicyError{Msg: fmt.Sprintf("the request is %s already; there is nothing to revoke", st.State)}
}

// revokedOK records that the broker revoked the credential. An active
// request whose time ran out becomes expired.
func revokedOK(st Status, now time.Time) Status {
	st.RevokePending, st.RevokeError, st.NextRevoke, st.RevokedAt = false, "", nil, &now
	st.Sealed = ""
	if st.State == Active {
		st.State, st.EndedAt, st.EndedBy, st.EndReason = Expired, &now, "airlock", "its time ran out"
		st.Message = "expired and revoked"
	} else if st.State == Approved {
		st.State, st.EndedAt, st.EndedBy, st.EndReason = Expired, &now, "airlock", "the window ended before the credential was collected"
		st.Message = "expired and revoked"
	} else {
		st.Message = fmt.Sprintf("%s; the credential was revoked at %s", st.State, now.UTC().Format(time.RFC3339))
	}
	return st
}

// revokeFailed records a failed revocation; it is retried with backoff and
// never forgotten.
func revokeFailed(st Status, err error, now time.Time) Status {
	if st.State == Active {
		// Out of time but not yet revoked: keep retrying until the broker
		// confirms.
		st.RevokePending = true
	}
	st.RevokeAttempts++
	next := now.Add(backoff(st.RevokeAttempts))
	st.RevokeError, st.NextRevoke = err.Error(), &next
	st.Message = fmt.Sprintf("revoking the credential failed (attempt %d, next at %s): %v", st.RevokeAttempts, next.UTC().Format(time.RFC3339), err)
	return st
}
