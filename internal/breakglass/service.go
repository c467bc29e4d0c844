package breakglass

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// SystemActor is who rotations are recorded as.
const SystemActor = "system:breakglass"

// Service stores, opens, drills and rotates break-glass credentials
// through the store, each change audited with its actor in the same
// transaction. It is safe for concurrent use.
type Service struct {
	store  store.Store
	sealer *seal.Sealer
	now    func() time.Time
	// Env is where brokers read their secrets; os.Getenv by default.
	Env broker.Env
}

// New returns a Service over st that seals with sealer and reads time
// from now (time.Now when nil). The store's own clock stamps what is
// written; now decides what is due.
func New(st store.Store, sealer *seal.Sealer, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, sealer: sealer, now: now, Env: os.Getenv}
}

// sealName binds a sealed credential to its BreakGlass: copied onto
// another object (or another kind's object of the same name) it does not
// open.
func sealName(name string) string { return Kind + "/" + name }

// Fingerprint is "sha256:" and the first 12 hex digits of the SHA-256 of
// a credential: it tells two credentials apart without revealing one.
func Fingerprint(credential []byte) string {
	sum := sha256.Sum256(credential)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// Target returns the environment of a break-glass, so the caller can be
// authorized for it.
func (s *Service) Target(ctx context.Context, name string) (string, error) {
	obj, err := s.store.Get(ctx, Kind, name)
	if err != nil {
		return "", fmt.Errorf("break-glass %s: %w", name, err)
	}
	var spec Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return "", err
	}
	return spec.Environment, nil
}

// Stored is the answer to a store: never the credential.
type Stored struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	StoredAt    time.Time `json:"storedAt"`
}

// Store seals credential into the status of the break-glass name,
// replacing what was there, and clears an outstanding open (the exposed
// credential is replaced). When the break-glass has a broker and the
// replaced credential was issued by it, its revocation is queued for the
// rotation loop. One trailing newline (a file's last) is not part of the
// credential. The audit entry records the fingerprint, never the value.
func (s *Service) Store(ctx context.Context, actor store.Actor, name string, credential []byte) (*Stored, error) {
	// A file ends in a newline that is not part of the secret.
	credential = bytes.TrimSuffix(bytes.TrimSuffix(credential, []byte("\n")), []byte("\r"))
	switch {
	case len(credential) == 0 || strings.TrimSpace(string(credential)) == "":
		return nil, &catalog.InvalidError{Msg: "the credential is empty: give the file that holds it (--from-file FILE, or - for standard input)"}
	case len(credential) > seal.MaxPlaintext:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("the credential is %d bytes; at most %d may be sealed", len(credential), seal.MaxPlaintext)}
	case !utf8.Valid(credential):
		return nil, &catalog.InvalidError{Msg: "the credential is not text (UTF-8); encode a binary credential (base64) before storing it"}
	}
	sealed, err := s.sealer.Seal(sealName(name), credential)
	if err != nil {
		return nil, fmt.Errorf("seal the credential of break-glass %s: %w", name, err)
	}
	fp := Fingerprint(credential)
	actor.Reason = "break-glass credential stored (" + fp + ")"
	var out *Stored
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, spec, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		now := tx.Now()
		if spec.Broker != nil && st.Handle != "" {
			queueRevoke(&st, name, st.Generation, st.Handle)
		}
		if st.Rotation != nil {
			st.Rotation.Grant = "" // a credential stored by hand ends a rotation in progress
			st.Rotation.Attempts, st.Rotation.LastError, st.Rotation.NextAttempt = 0, "", time.Time{}
			if len(st.Rotation.Revoke) == 0 {
				st.Rotation = nil
			}
		}
		st.Sealed, st.Fingerprint, st.StoredAt, st.StoredBy, st.Handle, st.ExpiresAt = sealed, fp, &now, actor.Name, "", nil
		clearOpen(&st)
		st.record(Event{At: now, Action: "stored", By: actor.Name, Detail: fp})
		out = &Stored{Name: name, Fingerprint: fp, StoredAt: now}
		return save(ctx, tx, obj, st)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queueRevoke records that the credential issued by grant generation gen
// (handle) must be revoked.
func queueRevoke(st *Status, name string, gen int, handle string) {
	if st.Rotation == nil {
		st.Rotation = &Rotation{}
	}
	st.Rotation.Revoke = append(st.Rotation.Revoke, PendingRevoke{Handle: handle, Grant: grantID(name, gen)})
}

func clearOpen(st *Status) {
	st.OpenedAt, st.OpenedBy, st.Reason, st.ValidUntil, st.Incident, st.Review = nil, "", "", nil, "", ""
	st.RotationDue, st.RotationReported = false, false
}

// grantID names the n-th broker-issued credential of a break-glass.
func grantID(name string, n int) string { return "bg-" + name + "-" + strconv.Itoa(n) }

// Opened is the answer to an open: the credential, once.
type Opened struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Credential  string    `json:"credential"`
	Fingerprint string    `json:"fingerprint"`
	ValidUntil  time.Time `json:"validUntil"`
	Incident    string    `json:"incident"`
	Review      string    `json:"review"`
	// Notified is how many sinks the breakglass.opened alert was queued for.
	Notified int `json:"notified"`
}

// OpenOutstandingError refuses a second open of a credential that was
// opened and not replaced since. It wraps store.ErrConflict (409).
type OpenOutstandingError struct {
	Name, By string
	At       time.Time
}

func (e *OpenOutstandingError) Error() string {
	return fmt.Sprintf("break-glass %s was opened by %s at %s and its credential has not been replaced since: a second open is refused until it is rotated (automatically through its broker once its window ends) or a new one is stored (airlock breakglass store %s --from-file FILE)",
		e.Name, e.By, e.At.UTC().Format(time.RFC3339), e.Name)
}

func (e *OpenOutstandingError) Unwrap() error { return store.ErrConflict }

// openAttempts bounds how often Open retries when a concurrent writer took
// the incident name it chose.
const openAttempts = 5

// Open opens the break-glass name for actor with reason (at least
// MinReason characters), needing no approval. In one transaction it
// unseals the credential, opens a sev1 incident, opens a review due in
// 24 hours (one tech-lead and one SRE, never the opener), queues a
// breakglass.opened notification for every sink whatever events the sink
// asks for, and records the open; the credential is in the answer only.
// An open of a credential already opened and not replaced since is an
// *OpenOutstandingError. Every refused open is audited as
// refused-breakglass-open.
func (s *Service) Open(ctx context.Context, actor store.Actor, name, reason string) (*Opened, error) {
	out, err := s.openRetry(ctx, actor, name, reason)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		var outstanding *OpenOutstandingError
		var invalid *catalog.InvalidError
		var policy *catalog.PolicyError
		if errors.As(err, &outstanding) || errors.As(err, &invalid) || errors.As(err, &policy) {
			rec := store.Actor{Name: actor.Name, Reason: "break-glass open refused: " + err.Error()}
			if aerr := s.store.Write(ctx, rec, func(tx store.Tx) error {
				return tx.Record(ctx, "refused-breakglass-open", Kind, name, "")
			}); aerr != nil {
				return nil, fmt.Errorf("%w (and recording the refused open failed: %v)", err, aerr)
			}
		}
	}
	return out, err
}

func (s *Service) openRetry(ctx context.Context, actor store.Actor, name, reason string) (*Opened, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case len(reason) < MinReason:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("a break-glass open needs a reason of at least %d characters (--reason TEXT): what is broken and why normal access will not do", MinReason)}
	case len(reason) > MaxReason:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("the reason is %d characters; at most %d are allowed", len(reason), MaxReason)}
	case actor.Name == "":
		return nil, &catalog.InvalidError{Msg: "a break-glass open needs the identity that opens it"}
	}
	for attempt := 1; ; attempt++ {
		out, err := s.open(ctx, actor, name, reason)
		var outstanding *OpenOutstandingError
		if err == nil || !errors.Is(err, store.ErrConflict) || errors.As(err, &outstanding) || attempt == openAttempts {
			return out, err
		}
	}
}

func (s *Service) open(ctx context.Context, actor store.Actor, name, reason string) (*Opened, error) {
	actor.Reason = "break-glass opened: " + reason
	var out *Opened
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		out = nil
		obj, spec, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.OpenedAt != nil {
			return &OpenOutstandingError{Name: name, By: st.OpenedBy, At: *st.OpenedAt}
		}
		if st.Sealed == "" {
			return &catalog.PolicyError{Msg: fmt.Sprintf("break-glass %s holds no credential yet: an admin stores one with airlock breakglass store %s --from-file FILE", name, name)}
		}
		cred, err := s.sealer.Open(sealName(name), st.Sealed)
		if err != nil {
			return fmt.Errorf("break-glass %s: the sealed credential does not open with this server's seal key (DATA/seal.key): %w", name, err)
		}
		now := tx.Now()
		until := now.Add(spec.validFor())
		summary := fmt.Sprintf("break-glass %s (environment %s) opened by %s: %s", name, spec.Environment, actor.Name, reason)
		inc, err := openIncident(ctx, tx, actor.Name, truncate(summary, incident.MaxSummary))
		if err != nil {
			return err
		}
		st.Opens++
		review, err := promotion.OpenBreakGlassReview(ctx, tx, promotion.BreakGlassReview{
			Name: "bg-" + inc, BreakGlass: name, Environment: spec.Environment, Incident: inc, Reason: reason, OpenedBy: actor.Name,
		})
		if err != nil {
			return err
		}
		n, err := notifyAll(ctx, tx, notify.Event{
			Type:    notify.BreakGlassOpened,
			Subject: fmt.Sprintf("BREAK-GLASS %s opened in %s by %s", name, spec.Environment, actor.Name),
			Message: fmt.Sprintf("%s opened break-glass %s (%s) at %s without approval: %s. Incident %s is open; review %s (%s) is due by %s. The credential is valid until %s and is then rotated.",
				actor.Name, name, spec.Environment, now.UTC().Format(time.RFC3339), reason, inc, review, approval.Describe(promotion.BreakGlassChain),
				now.Add(promotion.ReviewDue).UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)),
			Data: map[string]string{"breakGlass": name, "environment": spec.Environment, "openedBy": actor.Name, "reason": reason,
				"incident": inc, "review": review, "validUntil": until.UTC().Format(time.RFC3339)},
		})
		if err != nil {
			return err
		}
		st.OpenedAt, st.OpenedBy, st.Reason, st.ValidUntil, st.Incident, st.Review = &now, actor.Name, reason, &until, inc, review
		st.RotationDue, st.RotationReported = true, false
		st.record(Event{At: now, Action: "opened", By: actor.Name, Detail: fmt.Sprintf("%s; incident %s, review %s", reason, inc, review)})
		if err := save(ctx, tx, obj, st); err != nil {
			return err
		}
		out = &Opened{Name: name, Environment: spec.Environment, Credential: string(cred), Fingerprint: st.Fingerprint,
			ValidUntil: until, Incident: inc, Review: review, Notified: n}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DrillResult is the answer to a drill.
type DrillResult struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Drill
}

// Drill runs the break-glass procedure of name end to end without using
// the credential in anger: it checks a credential is stored and opens
// with this server's key (it is not shown), that no earlier open is
// outstanding, that the broker (if any) builds, and queues a
// breakglass.drill notification for every sink the way an open does
// (no sink is a failed step: an open would alert nobody). It opens no
// incident and no review, and says so in the steps. The result is
// recorded in status.lastDrill (and lastSuccessfulDrill when it passed)
// in the same transaction; a failed drill is recorded too and is not an
// error.
func (s *Service) Drill(ctx context.Context, actor store.Actor, name string) (*DrillResult, error) {
	actor.Reason = "break-glass drill"
	// Brokers are built outside the transaction: a factory may read files.
	spec0, err := s.spec(ctx, name)
	if err != nil {
		return nil, err
	}
	brokerStep := "rotation: no broker: after a real open the credential is marked for rotation and an admin stores a new one (airlock breakglass store)"
	brokerOK := true
	if b := spec0.Broker; b != nil {
		if _, err := broker.New(b.Type, b.Config, s.Env); err != nil {
			brokerStep, brokerOK = fmt.Sprintf("rotation: FAILED: broker %s does not build: %v", b.Type, err), false
		} else {
			brokerStep = fmt.Sprintf("rotation: broker %s is configured: after a real open it issues a new credential and revokes this one", b.Type)
		}
	}
	var out *DrillResult
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, spec, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		now := tx.Now()
		d := Drill{At: now, By: actor.Name, OK: true}
		step := func(ok bool, format string, args ...any) {
			d.Steps = append(d.Steps, fmt.Sprintf(format, args...))
			d.OK = d.OK && ok
		}
		switch {
		case st.Sealed == "":
			step(false, "credential: FAILED: none is stored (airlock breakglass store %s --from-file FILE)", name)
		default:
			cred, err := s.sealer.Open(sealName(name), st.Sealed)
			switch {
			case err != nil:
				step(false, "credential: FAILED: the sealed credential does not open with this server's seal key")
			case st.Fingerprint != "" && Fingerprint(cred) != st.Fingerprint:
				step(false, "credential: FAILED: the credential opens but its fingerprint is not the stored %s", st.Fingerprint)
			default:
				step(true, "credential: stored %s, opens with this server's seal key (not shown)", st.Fingerprint)
			}
			clear(cred)
		}
		if st.OpenedAt != nil {
			step(false, "state: FAILED: opened by %s at %s and not replaced since: a real open would be refused", st.OpenedBy, st.OpenedAt.UTC().Format(time.RFC3339))
		} else {
			step(true, "state: not opened: a real open would be allowed")
		}
		n, err := notifyAll(ctx, tx, notify.Event{
			Type:    notify.BreakGlassDrill,
			Subject: fmt.Sprintf("DRILL: break-glass %s in %s (no action needed)", name, spec.Environment),
			Message: fmt.Sprintf("%s is drilling break-glass %s (%s). This is a test of the alert a real open sends; nothing was opened.", actor.Name, name, spec.Environment),
			Data:    map[string]string{"breakGlass": name, "environment": spec.Environment, "drilledBy": actor.Name, "drill": "true"},
		})
		switch {
		case err != nil:
			return err
		case n == 0:
			step(false, "notify: FAILED: no notification sink is configured: a real open would alert nobody (declare a Sink)")
		default:
			step(true, "notify: breakglass.drill queued for %d sink(s), the path breakglass.opened takes", n)
		}
		step(true, "incident: skipped: a drill opens no incident (a real open opens a sev1 incident)")
		step(true, "review: skipped: a drill opens no review (a real open opens one due in 24h for %s)", approval.Describe(promotion.BreakGlassChain))
		step(brokerOK, "%s", brokerStep)
		st.LastDrill = &d
		if d.OK {
			st.LastSuccessfulDrill = &now
		}
		result := "passed"
		if !d.OK {
			result = "failed"
		}
		st.record(Event{At: now, Action: "drill", By: actor.Name, Detail: result})
		out = &DrillResult{Name: name, Environment: spec.Environment, Drill: d}
		return save(ctx, tx, obj, st)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) spec(ctx context.Context, name string) (Spec, error) {
	obj, err := s.store.Get(ctx, Kind, name)
	if err != nil {
		return Spec{}, fmt.Errorf("break-glass %s: %w", name, err)
	}
	var spec Spec
	err = obj.DecodeSpec(&spec)
	return spec, err
}

// load reads a break-glass in tx.
func load(ctx context.Context, r store.Reader, name string) (*resource.Object, Spec, Status, error) {
	var (
		spec Spec
		st   Status
	)
	obj, err := r.Get(ctx, Kind, name)
	if err != nil {
		return nil, spec, st, fmt.Errorf("break-glass %s: %w", name, err)
	}
	if err := obj.DecodeSpec(&spec); err != nil {
		return nil, spec, st, err
	}
	if err := obj.DecodeStatus(&st); err != nil {
		return nil, spec, st, err
	}
	return obj, spec, st, nil
}

// save writes st as obj's status, checking obj's revision.
func save(ctx context.Context, tx store.Tx, obj *resource.Object, st Status) error {
	next := obj.DeepCopy()
	if err := next.SetStatus(st); err != nil {
		return err
	}
	_, err := tx.Update(ctx, next)
	return err
}

// openIncident opens a sev1 incident in tx, named as incident.Service
// names them (inc-YYYYMMDD-NNN, the next number of the day). A name taken
// by a concurrent writer fails the transaction with a conflict, which
// Open retries.
func openIncident(ctx context.Context, tx store.Tx, by, summary string) (string, error) {
	now := tx.Now()
	all, err := tx.List(ctx, incident.Kind, nil)
	if err != nil {
		return "", fmt.Errorf("list incidents: %w", err)
	}
	prefix, seq := "inc-"+now.UTC().Format("20060102")+"-", 0
	for _, o := range all {
		if rest, ok := strings.CutPrefix(o.Metadata.Name, prefix); ok {
			if n, err := strconv.Atoi(rest); err == nil && n > seq {
				seq = n
			}
		}
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: incident.Kind, Metadata: resource.Metadata{
		Name:   fmt.Sprintf("%s%03d", prefix, seq+1),
		Labels: map[string]string{"severity": string(incident.Sev1), "state": string(incident.Open)},
	}}
	if err := obj.SetSpec(incident.Spec{Severity: incident.Sev1, Summary: summary, OpenedBy: by}); err != nil {
		return "", err
	}
	if err := obj.SetStatus(incident.Status{State: incident.Open, OpenedAt: now}); err != nil {
		return "", err
	}
	if _, err := tx.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("open incident for the break-glass: %w", err)
	}
	return obj.Metadata.Name, nil
}

// notifyAll queues ev for every sink, whatever events the sink asks for:
// a break-glass open is an alarm nobody filters out. It returns how many
// it queued.
func notifyAll(ctx context.Context, tx store.Tx, ev notify.Event) (int, error) {
	sinks, err := tx.List(ctx, notify.SinkKind, nil)
	if err != nil {
		return 0, fmt.Errorf("list sinks for %s: %w", ev.Type, err)
	}
	now := tx.Now()
	for _, sk := range sinks {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: notify.NotificationKind, Metadata: resource.Metadata{
			Name:   "ntf-" + strings.ToLower(now.UTC().Format("20060102t150405")) + "-" + hex.EncodeToString(b[:]),
			Labels: map[string]string{"sink": sk.Metadata.Name, "event": ev.Type, "state": string(notify.StatePending)},
		}}
		if err := obj.SetSpec(notify.NotificationSpec{Event: ev.Type, Subject: ev.Subject, Message: ev.Message, Data: ev.Data, Sink: sk.Metadata.Name}); err != nil {
			return 0, err
		}
		if err := obj.SetStatus(notify.NotificationStatus{State: notify.StatePending, NextAttemptAt: now}); err != nil {
			return 0, err
		}
		if _, err := tx.Create(ctx, obj); err != nil {
			return 0, fmt.Errorf("queue %s for sink %s: %w", ev.Type, sk.Metadata.Name, err)
		}
	}
	return len(sinks), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
