// Package incident records incidents: something is wrong in production,
// someone said so, and it stays open until someone closes it with a
// resolution. Emergency promotions must name an open incident.
package incident

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Kind is the kind this package owns.
const Kind = "Incident"

// Limits on free text.
const (
	MaxSummary    = 500
	MaxReference  = 200
	MaxResolution = 2000
)

// Severity is how bad an incident is, sev1 the worst.
type Severity string

// Severities.
const (
	Sev1 Severity = "sev1"
	Sev2 Severity = "sev2"
	Sev3 Severity = "sev3"
	Sev4 Severity = "sev4"
)

// Severities lists every severity, worst first.
var Severities = []Severity{Sev1, Sev2, Sev3, Sev4}

// State is whether an incident is still going on.
type State string

// States.
const (
	Open   State = "open"
	Closed State = "closed"
)

// Spec is what was reported. OpenedBy is set by the server from the
// caller's identity.
type Spec struct {
	Severity  Severity `json:"severity"`
	Summary   string   `json:"summary"`
	OpenedBy  string   `json:"openedBy"`
	Reference string   `json:"reference,omitempty"` // an external ticket
}

// Status is where the incident stands.
type Status struct {
	State      State      `json:"state"`
	OpenedAt   time.Time  `json:"openedAt"`
	ClosedAt   *time.Time `json:"closedAt,omitempty"`
	ClosedBy   string     `json:"closedBy,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
}

// Register adds Incident to a scheme. It is not declarative: incidents are
// opened and closed through their own endpoints.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "incidents", Aliases: []string{"incident", "inc"}, NewSpec: func() any { return &Spec{} }})
}

// InvalidError is a malformed request. The API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// OpenRequest asks to open an incident.
type OpenRequest struct {
	Severity  Severity `json:"severity"`
	Summary   string   `json:"summary"`
	Reference string   `json:"reference,omitempty"`
}

// Service opens and closes incidents through the store, so each change is
// audited with its actor.
type Service struct {
	store store.Store
}

// New returns a Service over st.
func New(st store.Store) *Service { return &Service{store: st} }

func validSeverity(s Severity) bool {
	for _, v := range Severities {
		if s == v {
			return true
		}
	}
	return false
}

func (r *OpenRequest) validate() error {
	r.Severity = Severity(strings.ToLower(strings.TrimSpace(string(r.Severity))))
	r.Summary, r.Reference = strings.TrimSpace(r.Summary), strings.TrimSpace(r.Reference)
	switch {
	case !validSeverity(r.Severity):
		return &InvalidError{Msg: fmt.Sprintf("severity %q is not one of sev1, sev2, sev3, sev4 (sev1 is the worst)", r.Severity)}
	case r.Summary == "":
		return &InvalidError{Msg: "an incident needs a summary of what is wrong (--summary TEXT)"}
	case len(r.Summary) > MaxSummary:
		return &InvalidError{Msg: fmt.Sprintf("the summary is %d characters; at most %d are allowed (put details in the external ticket, --reference)", len(r.Summary), MaxSummary)}
	case len(r.Reference) > MaxReference:
		return &InvalidError{Msg: fmt.Sprintf("the reference is %d characters; at most %d are allowed", len(r.Reference), MaxReference)}
	}
	return nil
}

// namePrefix is the prefix of the names of incidents opened on day t (UTC).
func namePrefix(t time.Time) string { return "inc-" + t.UTC().Format("20060102") + "-" }

// openAttempts bounds how often Open retries when a concurrent writer took
// the name it chose.
const openAttempts = 5

// Open records a new open incident opened by actor. Its name is
// "inc-YYYYMMDD-NNN": the transaction's date and the next number among that
// day's incidents, so names are never reused. When another writer takes the
// same number first, Open tries the next one.
func (s *Service) Open(ctx context.Context, actor store.Actor, req OpenRequest) (*resource.Object, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if actor.Name == "" {
		return nil, &InvalidError{Msg: "an incident needs the identity that opens it"}
	}
	for attempt := 1; ; attempt++ {
		out, err := s.open(ctx, actor, req)
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt == openAttempts {
			return out, err
		}
	}
}

func (s *Service) open(ctx context.Context, actor store.Actor, req OpenRequest) (*resource.Object, error) {
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		now := tx.Now()
		all, err := tx.List(ctx, Kind, nil)
		if err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		prefix, seq := namePrefix(now), 0
		for _, o := range all {
			rest, ok := strings.CutPrefix(o.Metadata.Name, prefix)
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(rest); err == nil && n > seq {
				seq = n
			}
		}
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{
			Name:   fmt.Sprintf("%s%03d", prefix, seq+1),
			Labels: map[string]string{"severity": string(req.Severity), "state": string(Open)},
		}}
		if err := obj.SetSpec(Spec{Severity: req.Severity, Summary: req.Summary, OpenedBy: actor.Name, Reference: req.Reference}); err != nil {
			return err
		}
		if err := obj.SetStatus(Status{State: Open, OpenedAt: now}); err != nil {
			return err
		}
		out, err = tx.Create(ctx, obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Close marks an open incident closed by actor with a resolution. Closing
// a closed incident is a conflict; an unknown name is not found.
func (s *Service) Close(ctx context.Context, actor store.Actor, name, resolution string) (*resource.Object, error) {
	resolution = strings.TrimSpace(resolution)
	switch {
	case resolution == "":
		return nil, &InvalidError{Msg: "closing an incident needs its resolution (--resolution TEXT)"}
	case len(resolution) > MaxResolution:
		return nil, &InvalidError{Msg: fmt.Sprintf("the resolution is %d characters; at most %d are allowed", len(resolution), MaxResolution)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, Kind, name)
		if err != nil {
			return err
		}
		var st Status
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		if st.State == Closed {
			return fmt.Errorf("incident %s was already closed by %s at %s: %w", name, st.ClosedBy, st.ClosedAt.UTC().Format(time.RFC3339), store.ErrConflict)
		}
		now := tx.Now()
		st.State, st.ClosedAt, st.ClosedBy, st.Resolution = Closed, &now, actor.Name, resolution
		next := obj.DeepCopy()
		if next.Metadata.Labels == nil {
			next.Metadata.Labels = map[string]string{}
		}
		next.Metadata.Labels["state"] = string(Closed)
		if err := next.SetStatus(st); err != nil {
			return err
		}
		out, err = tx.Update(ctx, next)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// IsOpen reports whether the incident name exists in r and is open. A
// missing incident is (false, nil); other read errors are returned.
func IsOpen(ctx context.Context, r store.Reader, name string) (bool, error) {
	obj, err := r.Get(ctx, Kind, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("incident %s: %w", name, err)
	}
	var st Status
	if err := obj.DecodeStatus(&st); err != nil {
		return false, err
	}
	return st.State == Open, nil
}
