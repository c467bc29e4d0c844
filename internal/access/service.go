package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/sshca"
	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/window"
)

// Service takes access requests, votes and revocations, and reconciles
// requests with their brokers: it issues approved credentials, revokes
// them when their time is up, and retries what failed. Every change is
// audited with its actor; credentials are only ever stored sealed.
type Service struct {
	store  store.Store
	sealer *seal.Sealer
	env    broker.Env
	now    func() time.Time
	// Actor is who the reconciler acts as.
	Actor store.Actor

	id    string         // this process, for issuing claims
	locks [64]sync.Mutex // by request name: one broker call at a time per request
	wake  chan struct{}

	brokerMu sync.Mutex
	brokers  map[string]broker.Broker // by resource type and configuration
}

// New returns a Service. env is where brokers read their secrets
// (os.Getenv); now is the reconciler's clock (the store's in tests).
func New(st store.Store, sealer *seal.Sealer, env broker.Env, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Service{store: st, sealer: sealer, env: env, now: now, wake: make(chan struct{}, 1), id: hex.EncodeToString(b[:]),
		Actor: store.Actor{Name: "system:access", Reason: "just-in-time access: issue, expire and revoke credentials"}}
}

func (s *Service) lock(name string) func() {
	h := fnv.New32a()
	h.Write([]byte(name))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Ask is what a person asks for.
type Ask struct {
	Environment string `json:"environment"`
	Resource    string `json:"resource"`
	Role        string `json:"role"`
	For         string `json:"for"` // a duration, e.g. 1h
	Reason      string `json:"reason"`
	Incident    string `json:"incident,omitempty"`
	PublicKey   string `json:"publicKey,omitempty"`
}

// Request records actor's request for access. Refused, changing nothing
// but audited as refused-access-request: an empty or short reason, an
// unknown resource or role, a duration above the cap, a malformed public
// key, a closed incident, a freeze or out-of-hours request without an
// open incident when the policy asks for one.
func (s *Service) Request(ctx context.Context, actor store.Actor, ask Ask) (*resource.Object, error) {
	out, err := s.request(ctx, actor, ask)
	if err != nil && refused(err) {
		s.recordRefusal(ctx, actor, "refused-access-request", ask.Resource, err)
	}
	return out, err
}

func refused(err error) bool {
	var pe *PolicyError
	var ie *InvalidError
	return errors.As(err, &pe) || errors.As(err, &ie)
}

func (s *Service) recordRefusal(ctx context.Context, actor store.Actor, action, name string, err error) {
	rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("refused: %v", err)}
	_ = s.store.Write(ctx, rec, func(tx store.Tx) error {
		return tx.Record(ctx, action, RequestKind, name, "")
	})
}

func (ask *Ask) validate() (time.Duration, error) {
	ask.Reason = strings.TrimSpace(ask.Reason)
	switch {
	case len(ask.Reason) < MinReason:
		return 0, &InvalidError{Msg: fmt.Sprintf("a reason of at least %d characters is required (--reason TEXT): why you need this access", MinReason)}
	case len(ask.Reason) > MaxReason:
		return 0, &InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	case ask.Environment == "":
		return 0, &InvalidError{Msg: "the environment is required (--env ENV)"}
	case ask.Resource == "":
		return 0, &InvalidError{Msg: "the resource is required (--resource NAME)"}
	case ask.Role == "":
		return 0, &InvalidError{Msg: "the role is required (--role NAME)"}
	case len(ask.PublicKey) > MaxPublicKey:
		return 0, &InvalidError{Msg: fmt.Sprintf("the public key is longer than %d bytes", MaxPublicKey)}
	}
	d, err := time.ParseDuration(ask.For)
	if err != nil || d < MinDuration {
		return 0, &InvalidError{Msg: fmt.Sprintf("duration %q must be a Go duration of at least %s, e.g. 1h (--for)", ask.For, MinDuration)}
	}
	if ask.PublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ask.PublicKey)); err != nil {
			return 0, &InvalidError{Msg: fmt.Sprintf("the public key is not in authorized_keys format (e.g. \"ssh-ed25519 AAAA... you@host\"): %v", err)}
		}
	}
	return d, nil
}

func (s *Service) request(ctx context.Context, actor store.Actor, ask Ask) (*resource.Object, error) {
	d, err := ask.validate()
	if err != nil {
		return nil, err
	}
	var out *resource.Object
	for attempt := 1; ; attempt++ {
		err = s.store.Write(ctx, actor, func(tx store.Tx) error {
			var err error
			out, err = s.create(ctx, tx, actor, ask, d)
			return err
		})
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt == 5 {
			return out, err
		}
	}
}

func (s *Service) create(ctx context.Context, tx store.Tx, actor store.Actor, ask Ask, d time.Duration) (*resource.Object, error) {
	now := tx.Now()
	res, err := loadResource(ctx, tx, ask.Resource)
	if err != nil {
		return nil, err
	}
	if res.Environment != ask.Environment {
		return nil, &InvalidError{Msg: fmt.Sprintf("resource %s is in environment %s, not %s", ask.Resource, res.Environment, ask.Environment)}
	}
	role, ok := res.Roles[ask.Role]
	if !ok {
		return nil, &InvalidError{Msg: fmt.Sprintf("resource %s has no role %q; its roles are %s", ask.Resource, ask.Role, strings.Join(res.RoleNames(), ", "))}
	}
	maxD, pending := res.Limits(ask.Role)
	if d > maxD {
		return nil, &InvalidError{Msg: fmt.Sprintf("%s of %s on %s may last at most %s; you asked for %s", ask.Role, ask.Resource, ask.Environment, maxD, d)}
	}
	if res.Broker.Type == "ssh" {
		if ask.PublicKey == "" {
			return nil, &InvalidError{Msg: fmt.Sprintf("%s issues SSH certificates: give the public key to certify (--public-key FILE)", ask.Resource)}
		}
		if _, err := sshca.ParsePublicKey(ask.PublicKey); err != nil {
			return nil, &InvalidError{Msg: err.Error()}
		}
	}
	if ask.Incident != "" {
		open, err := incident.IsOpen(ctx, tx, ask.Incident)
		if err != nil {
			return nil, err
		}
		if !open {
			return nil, &PolicyError{Msg: fmt.Sprintf("incident %q does not exist or is closed; open one with airlock incident open, or leave --incident out", ask.Incident)}
		}
	}
	var alerts []string
	if why, err := frozen(ctx, tx, ask.Environment, now); err != nil {
		return nil, err
	} else if why != "" && ask.Incident == "" {
		return nil, &PolicyError{Msg: fmt.Sprintf("%s is frozen (%s): access during a freeze needs an open incident (--incident ID)", ask.Environment, why)}
	}
	if bh := res.BusinessHours; bh != nil {
		inside, err := inWindow(ctx, tx, bh.Window, ask.Environment, now)
		if err != nil {
			return nil, err
		}
		if !inside && ask.Incident == "" {
			if bh.RequireIncident {
				return nil, &PolicyError{Msg: fmt.Sprintf("it is outside business hours (window %s): access to %s now needs an open incident (--incident ID)", bh.Window, ask.Resource)}
			}
			alerts = append(alerts, fmt.Sprintf("access outside business hours (window %s) without an incident", bh.Window))
		}
	}
	more, err := patternAlerts(ctx, tx, actor.Name, ask, res, now)
	if err != nil {
		return nil, err
	}
	alerts = append(alerts, more...)
	name, err := nextName(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	spec := RequestSpec{
		Requester: actor.Name, Environment: ask.Environment, Resource: ask.Resource, Role: ask.Role,
		Duration: d.String(), Reason: ask.Reason, Incident: ask.Incident, PublicKey: ask.PublicKey,
		Require: role.Approvals, HighRisk: role.HighRisk, Grants: role.Grants, PendingUntil: now.Add(pending),
	}
	st := Status{State: Pending, Missing: approval.Describe(role.Approvals), Alerts: alerts}
	st.Message = "awaits " + st.Missing
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: RequestKind, Metadata: resource.Metadata{
		Name:   name,
		Labels: map[string]string{"environment": ask.Environment, "resource": ask.Resource, "role": ask.Role, "state": string(Pending), openLabel: "true", "day": now.UTC().Format("20060102")},
	}}
	if err := obj.SetSpec(spec); err != nil {
		return nil, err
	}
	if err := obj.SetStatus(st); err != nil {
		return nil, err
	}
	out, err := tx.Create(ctx, obj)
	if err != nil {
		return nil, err
	}
	if _, err := notify.Enqueue(ctx, tx, notify.Event{
		Type:    notify.AccessRequested,
		Subject: fmt.Sprintf("%s asks for %s on %s in %s for %s", actor.Name, ask.Role, ask.Resource, ask.Environment, d),
		Message: fmt.Sprintf("%s: %s. Approve with: airlock access approve %s --reason TEXT (needs %s)", name, ask.Reason, name, approval.Describe(role.Approvals)),
		Data: map[string]string{"request": name, "requester": actor.Name, "environment": ask.Environment, "resource": ask.Resource,
			"role": ask.Role, "duration": d.String(), "incident": ask.Incident, "needs": approval.Describe(role.Approvals)},
	}); err != nil {
		return nil, err
	}
	for _, a := range alerts {
		if _, err := notify.Enqueue(ctx, tx, notify.Event{
			Type:    notify.AccessAlert,
			Subject: fmt.Sprintf("access alert: %s on %s in %s: %s", actor.Name, ask.Resource, ask.Environment, a),
			Message: fmt.Sprintf("%s asked for %s on %s (%s): %s", actor.Name, ask.Role, ask.Resource, name, a),
			Data:    map[string]string{"request": name, "requester": actor.Name, "environment": ask.Environment, "resource": ask.Resource, "alert": a},
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nextName is acc-YYYYMMDD-NNN.
func nextName(ctx context.Context, tx store.Tx, now time.Time) (string, error) {
	day := now.UTC().Format("20060102")
	same, err := tx.List(ctx, RequestKind, resource.Selector{{Key: "day", Op: resource.Equals, Values: []string{day}}})
	if err != nil {
		return "", err
	}
	prefix, seq := "acc-"+day+"-", 0
	for _, o := range same {
		if n, err := strconv.Atoi(strings.TrimPrefix(o.Metadata.Name, prefix)); err == nil && n > seq {
			seq = n
		}
	}
	return fmt.Sprintf("%s%03d", prefix, seq+1), nil
}

func loadResource(ctx context.Context, r store.Reader, name string) (ResourceSpec, error) {
	var spec ResourceSpec
	obj, err := r.Get(ctx, ResourceKind, name)
	if errors.Is(err, store.ErrNotFound) {
		return spec, &InvalidError{Msg: fmt.Sprintf("there is no access resource %q; list them with airlock get accessresources", name)}
	}
	if err != nil {
		return spec, err
	}
	if err := obj.DecodeSpec(&spec); err != nil {
		return spec, err
	}
	return spec, nil
}

// frozen says which deny window closes env at now, or "".
func frozen(ctx context.Context, r store.Reader, env string, now time.Time) (string, error) {
	ws, err := window.Load(ctx, r)
	if err != nil {
		return "", err
	}
	var deny []window.Window
	for _, w := range ws {
		if w.Spec.Kind == window.Deny && len(w.Spec.Applications) == 0 {
			deny = append(deny, w)
		}
	}
	d, err := window.Decide(deny, "", env, now)
	if err != nil || d.Open {
		return "", err
	}
	return d.Why, nil
}

// inWindow says whether the allow window name is open for env at now.
func inWindow(ctx context.Context, r store.Reader, name, env string, now time.Time) (bool, error) {
	obj, err := r.Get(ctx, window.KindName, name)
	if err != nil {
		return false, fmt.Errorf("business-hours window %s: %w", name, err)
	}
	w := window.Window{Name: name}
	if err := obj.DecodeSpec(&w.Spec); err != nil {
		return false, err
	}
	w.Spec.Environments = nil // the resource chose it for its environment
	d, err := window.Decide([]window.Window{w}, "", env, now)
	return d.Open, err
}

// VoteRequest is one approver's decision.
type VoteRequest struct {
	Request  string
	Decision string
	Reason   string
	Roles    []string // the caller's roles in the request's environment
}

// Vote records an approval or denial. The approval that completes the
// policy issues the credential at once (the reconciler retries if the
// broker fails). Refusals are audited as refused-approve / refused-deny.
func (s *Service) Vote(ctx context.Context, actor store.Actor, v VoteRequest) (*resource.Object, error) {
	out, err := s.vote(ctx, actor, v)
	if err != nil && refused(err) {
		s.recordRefusal(ctx, actor, "refused-"+v.Decision, v.Request, err)
	}
	return out, err
}

func (s *Service) vote(ctx context.Context, actor store.Actor, v VoteRequest) (*resource.Object, error) {
	v.Reason = strings.TrimSpace(v.Reason)
	switch {
	case v.Reason == "":
		return nil, &InvalidError{Msg: "a reason is required (--reason TEXT)"}
	case len(v.Reason) > MaxReason:
		return nil, &InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	case v.Decision != Approve && v.Decision != Deny:
		return nil, &InvalidError{Msg: fmt.Sprintf("decision %q must be approve or deny", v.Decision)}
	}
	unlock := s.lock(v.Request)
	err := s.update(ctx, actor, v.Request, func(spec RequestSpec, st Status, now time.Time) (Status, error) {
		return castVote(spec, st, actor.Name, v.Roles, v.Decision, v.Reason, now)
	})
	unlock()
	if err != nil {
		return nil, err
	}
	if err := s.Process(ctx, v.Request); err != nil {
		return nil, err
	}
	return s.store.Get(ctx, RequestKind, v.Request)
}

// update applies fn to a request in one write.
func (s *Service) update(ctx context.Context, actor store.Actor, name string, fn func(RequestSpec, Status, time.Time) (Status, error)) error {
	return s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, spec, st, err := loadRequest(ctx, tx, name)
		if err != nil {
			return err
		}
		next, err := fn(spec, st, tx.Now())
		if err != nil {
			return err
		}
		return save(ctx, tx, obj, next)
	})
}

func loadRequest(ctx context.Context, r store.Reader, name string) (*resource.Object, RequestSpec, Status, error) {
	var spec RequestSpec
	var st Status
	obj, err := r.Get(ctx, RequestKind, name)
	if err != nil {
		return nil, spec, st, fmt.Errorf("access request %s: %w", name, err)
	}
	if err := obj.DecodeSpec(&spec); err != nil {
		return nil, spec, st, err
	}
	if err := obj.DecodeStatus(&st); err != nil {
		return nil, spec, st, err
	}
	return obj, spec, st, nil
}

// openLabel marks the requests the reconciler looks at: not final, or
// with a revocation still to confirm.
const openLabel = "open"

func save(ctx context.Context, tx store.Tx, obj *resource.Object, st Status) error {
	obj.Metadata.Labels["state"] = string(st.State)
	if !st.State.Final() || st.RevokePending {
		obj.Metadata.Labels[openLabel] = "true"
	} else {
		delete(obj.Metadata.Labels, openLabel)
	}
	if st.RevokePending {
		obj.Metadata.Labels["revoke"] = "pending"
	} else {
		delete(obj.Metadata.Labels, "revoke")
	}
	obj.Metadata.Revision = 0
	if err := obj.SetStatus(st); err != nil {
		return err
	}
	_, err := tx.Update(ctx, obj)
	return err
}

// Target returns a request's environment and requester, so the caller can
// be authorized.
func (s *Service) Target(ctx context.Context, name string) (env, requester string, err error) {
	_, spec, _, err := loadRequest(ctx, s.store, name)
	return spec.Environment, spec.Requester, err
}

// Revoke ends a request by actor: a pending one at once, an approved or
// active one's credential through its broker now (retried if that fails).
// A request already over is refused, audited as refused-revoke.
func (s *Service) Revoke(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, &InvalidError{Msg: "a reason is required (--reason TEXT)"}
	}
	unlock := s.lock(name)
	err := s.update(ctx, actor, name, func(_ RequestSpec, st Status, now time.Time) (Status, error) {
		return requestRevoke(st, actor.Name, reason, now)
	})
	unlock()
	if err != nil {
		if refused(err) {
			s.recordRefusal(ctx, actor, "refused-revoke", name, err)
		}
		return nil, err
	}
	if err := s.Process(ctx, name); err != nil {
		return nil, err
	}
	return s.store.Get(ctx, RequestKind, name)
}

// Credentials hands the issued credential to the requester, once: it is
// removed from the store in the same write. Anyone else, and a second
// call, is refused and audited.
func (s *Service) Credentials(ctx context.Context, actor store.Actor, name string) (map[string]string, error) {
	var cred map[string]string
	rec := actor
	rec.Reason = "credential handed to the requester"
	err := s.store.Write(ctx, rec, func(tx store.Tx) error {
		obj, spec, st, err := loadRequest(ctx, tx, name)
		if err != nil {
			return err
		}
		switch {
		case actor.Name != spec.Requester:
			return &PolicyError{Msg: fmt.Sprintf("only %s, who asked for %s, may collect its credential", spec.Requester, name)}
		case st.Collected != nil:
			return &PolicyError{Msg: fmt.Sprintf("the credential of %s was handed out at %s; it is shown once", name, st.Collected.UTC().Format(time.RFC3339))}
		case st.State == Approved:
			return &PolicyError{Msg: fmt.Sprintf("the credential of %s is being issued (%s); try again in a moment", name, st.Message)}
		case st.State != Active || st.Sealed == "":
			return &PolicyError{Msg: fmt.Sprintf("%s is %s; there is no credential to collect", name, st.State)}
		}
		raw, err := s.sealer.Open(name, st.Sealed)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &cred); err != nil {
			return err
		}
		now := tx.Now()
		st.Sealed, st.Collected = "", &now
		return save(ctx, tx, obj, st)
	})
	if err != nil && refused(err) {
		s.recordRefusal(ctx, actor, "refused-credentials", name, err)
	}
	return cred, err
}

// Process does what one request needs now: expire it, issue its
// credential, or revoke it. Broker calls run outside store transactions;
// the outcome is written after, re-checked against the stored state.
func (s *Service) Process(ctx context.Context, name string) error {
	unlock := s.lock(name)
	defer unlock()
	_, spec, st, err := loadRequest(ctx, s.store, name)
	if err != nil {
		return err
	}
	now := s.now()
	switch Due(spec, st, now) {
	case ExpirePending:
		return s.update(ctx, s.Actor, name, func(spec RequestSpec, st Status, now time.Time) (Status, error) {
			if Due(spec, st, now) != ExpirePending {
				return st, nil
			}
			return expirePending(st, now), nil
		})
	case ExpireUnused:
		return s.update(ctx, s.Actor, name, func(spec RequestSpec, st Status, now time.Time) (Status, error) {
			if Due(spec, st, now) != ExpireUnused {
				return st, nil
			}
			return expireUnused(st, now), nil
		})
	case Issue:
		return s.issue(ctx, name, spec, st)
	case Revoke:
		return s.revoke(ctx, name, spec, st)
	}
	return nil
}

func grantOf(name string, spec RequestSpec, st Status) broker.Grant {
	g := broker.Grant{ID: name, Requester: spec.Requester, Environment: spec.Environment, Resource: spec.Resource,
		Role: spec.Role, Grants: spec.Grants, PublicKey: spec.PublicKey}
	if st.NotBefore != nil {
		g.NotBefore = *st.NotBefore
	}
	if st.NotAfter != nil {
		g.NotAfter = *st.NotAfter
	}
	return g
}

// brokerFor returns the broker of a resource, built once per broker type
// and configuration, so its connection limits hold across requests.
func (s *Service) brokerFor(ctx context.Context, resName string) (broker.Broker, error) {
	res, err := loadResource(ctx, s.store, resName)
	if err != nil {
		return nil, err
	}
	key := res.Broker.Type + "\x00" + string(res.Broker.Config)
	s.brokerMu.Lock()
	defer s.brokerMu.Unlock()
	if b, ok := s.brokers[key]; ok {
		return b, nil
	}
	b, err := broker.New(res.Broker.Type, res.Broker.Config, s.env)
	if err != nil {
		return nil, err
	}
	if s.brokers == nil {
		s.brokers = map[string]broker.Broker{}
	}
	s.brokers[key] = b
	return b, nil
}

// IssueClaim is how long one airlock process holds the issuing of a
// credential before another may take it over.
const IssueClaim = 2 * time.Minute

var errNotMine = errors.New("another airlock process is issuing it")

// issue asks the broker for the credential. Several airlock processes may
// share a database: the one that first claims the issuing (in the store)
// calls the broker, so two never issue the same access twice (a second
// PostgreSQL password would invalidate the first handed out).
func (s *Service) issue(ctx context.Context, name string, spec RequestSpec, st Status) error {
	err := s.update(ctx, s.Actor, name, func(spec RequestSpec, st Status, now time.Time) (Status, error) {
		if Due(spec, st, now) != Issue {
			return st, errNotMine
		}
		if st.IssuingBy != "" && st.IssuingBy != s.id && st.IssuingUntil != nil && now.Before(*st.IssuingUntil) {
			return st, errNotMine
		}
		until := now.Add(IssueClaim)
		st.IssuingBy, st.IssuingUntil = s.id, &until
		return st, nil
	})
	if errors.Is(err, errNotMine) {
		return nil
	}
	if err != nil {
		return err
	}
	var iss broker.Issued
	b, err := s.brokerFor(ctx, spec.Resource)
	if err == nil {
		iss, err = b.Grant(ctx, grantOf(name, spec, st))
	}
	var sealed string
	if err == nil {
		raw, merr := json.Marshal(iss.Credential)
		if merr == nil {
			sealed, merr = s.sealer.Seal(name, raw)
		}
		err = merr
	}
	return s.update(ctx, s.Actor, name, func(_ RequestSpec, st Status, now time.Time) (Status, error) {
		st.IssuingBy, st.IssuingUntil = "", nil
		if err != nil {
			return issueFailed(st, err, now), nil
		}
		return issued(st, iss.Handle, sealed, now), nil
	})
}

func (s *Service) revoke(ctx context.Context, name string, spec RequestSpec, st Status) error {
	b, err := s.brokerFor(ctx, spec.Resource)
	if err == nil {
		err = b.Revoke(ctx, grantOf(name, spec, st), st.Handle)
	}
	return s.store.Write(ctx, s.Actor, func(tx store.Tx) error {
		obj, _, cur, lerr := loadRequest(ctx, tx, name)
		if lerr != nil {
			return lerr
		}
		now := tx.Now()
		if err != nil {
			next := revokeFailed(cur, err, now)
			if next.RevokeAttempts == 1 || next.RevokeAttempts%10 == 0 {
				if _, nerr := notify.Enqueue(ctx, tx, notify.Event{
					Type:    notify.AccessRevocationFailed,
					Subject: fmt.Sprintf("revoking %s's %s on %s failed (attempt %d)", spec.Requester, spec.Role, spec.Resource, next.RevokeAttempts),
					Message: fmt.Sprintf("%s: %v; airlock retries until the broker confirms", name, err),
					Data:    map[string]string{"request": name, "requester": spec.Requester, "resource": spec.Resource, "environment": spec.Environment, "attempts": strconv.Itoa(next.RevokeAttempts)},
				}); nerr != nil {
					return nerr
				}
			}
			return save(ctx, tx, obj, next)
		}
		return save(ctx, tx, obj, revokedOK(cur, now))
	})
}

// RunOnce processes every request that needs something now: expired
// ones first are revoked, approved ones issued, failed revocations
// retried. The server calls it before it serves, so access that ran out
// while airlock was down is revoked first. It returns when the next
// request needs attention (zero: none is waiting).
func (s *Service) RunOnce(ctx context.Context) (time.Time, error) {
	objs, err := s.store.List(ctx, RequestKind, resource.Selector{{Key: openLabel, Op: resource.Equals, Values: []string{"true"}}})
	if err != nil {
		return time.Time{}, err
	}
	var errs []error
	var next time.Time
	for _, o := range objs {
		var spec RequestSpec
		var st Status
		if err := o.DecodeSpec(&spec); err != nil {
			return time.Time{}, err
		}
		if err := o.DecodeStatus(&st); err != nil {
			return time.Time{}, err
		}
		if Due(spec, st, s.now()) != Nothing {
			if err := s.Process(ctx, o.Metadata.Name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Metadata.Name, err))
			}
			continue
		}
		if w := NextWake(spec, st); !w.IsZero() && (next.IsZero() || w.Before(next)) {
			next = w
		}
	}
	return next, errors.Join(errs...)
}

// Loop runs RunOnce until ctx ends: at least every second, and at once
// when Wake is called.
func (s *Service) Loop(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Wake makes Loop run now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
