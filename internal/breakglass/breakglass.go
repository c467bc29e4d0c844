// Package breakglass keeps sealed emergency credentials, one per
// BreakGlass resource: a credential nobody holds day to day, opened without
// approval when production is on fire, at the price of an immediate alert
// to every notification sink, a sev1 incident, a review due in 24 hours,
// and a rotation once its window is over.
//
// The credential is sealed (internal/access/seal: a key outside the
// database, bound to the BreakGlass's name) and is shown only in the
// answer to an open. It never appears in an object in the clear, in an
// audit entry or in a log line: what is recorded is that it was stored,
// opened or rotated, and a SHA-256 fingerprint prefix.
//
// Drills run the procedure end to end without using the credential; a
// break-glass whose last successful drill is older than its drillEvery
// (90 days by default), or that was never drilled, is overdue (Overdue).
package breakglass

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Kind is the kind this package owns.
const Kind = "BreakGlass"

// Limits and defaults.
const (
	MinValidFor       = 5 * time.Minute
	MaxValidFor       = 24 * time.Hour
	DefaultDrillEvery = 90 * 24 * time.Hour
	MinDrillEvery     = 24 * time.Hour
	MaxDrillEvery     = 366 * 24 * time.Hour
	// MinReason is the shortest reason an open accepts.
	MinReason      = 10
	MaxReason      = 2000
	MaxDescription = 500
	MaxGrants      = 50
	// MaxHistory is how many events status.history keeps (the latest).
	MaxHistory = 50
)

// BrokerSpec names the broker that issues a new credential at rotation.
type BrokerSpec struct {
	Type string `json:"type"`
	// Config is the broker type's configuration, as broker.New reads it.
	// It names where secrets live (an environment variable), never a
	// secret.
	Config json.RawMessage `json:"config,omitempty"`
	// Grants are what the credential is given on the resource (roles,
	// principals).
	Grants []string `json:"grants,omitempty"`
}

// Spec is a declared break-glass. The credential is never part of it:
// `airlock breakglass store` seals it into the status.
type Spec struct {
	Environment string `json:"environment"`
	Description string `json:"description,omitempty"`
	// ValidFor is how long an opened credential may be used before it is
	// rotated, 5m to 24h (e.g. "1h").
	ValidFor string `json:"validFor"`
	// Broker, when set, issues the replacement credential at rotation and
	// revokes the previous one.
	Broker *BrokerSpec `json:"broker,omitempty"`
	// DrillEvery is how old the last successful drill may be before the
	// break-glass is overdue; default 2160h (90 days).
	DrillEvery string `json:"drillEvery,omitempty"`
}

// validFor returns the parsed window; Validate has checked it.
func (s Spec) validFor() time.Duration {
	d, _ := time.ParseDuration(s.ValidFor)
	return d
}

// drillEveryText is drillEvery as declared, or the default's.
func (s Spec) drillEveryText() string {
	if s.DrillEvery == "" {
		return "2160h"
	}
	return s.DrillEvery
}

// drillEvery returns the parsed drill interval or the default.
func (s Spec) drillEvery() time.Duration {
	if s.DrillEvery == "" {
		return DefaultDrillEvery
	}
	d, err := time.ParseDuration(s.DrillEvery)
	if err != nil {
		return DefaultDrillEvery
	}
	return d
}

// Rotation is the work left to replace an opened credential through the
// broker, or to revoke the one it replaced. It is kept until done:
// failures are retried with backoff and never forgotten.
type Rotation struct {
	// Grant is the broker grant in progress ("bg-<name>-<n>"); a retried
	// Grant with the same ID replaces what an interrupted one made.
	Grant string `json:"grant,omitempty"`
	// Revoke lists replaced broker-issued credentials still to revoke,
	// oldest first.
	Revoke      []PendingRevoke `json:"revoke,omitempty"`
	Attempts    int             `json:"attempts,omitempty"`
	NextAttempt time.Time       `json:"nextAttemptAt,omitempty"`
	LastError   string          `json:"lastError,omitempty"`
}

// PendingRevoke is a replaced credential still to revoke: the broker's
// handle and the grant ID that issued it.
type PendingRevoke struct {
	Handle string `json:"handle"`
	Grant  string `json:"grant"`
}

// Drill is the result of one drill.
type Drill struct {
	At    time.Time `json:"at"`
	By    string    `json:"by"`
	OK    bool      `json:"ok"`
	Steps []string  `json:"steps"`
}

// Event is one line of a break-glass's history: stored, opened,
// rotated, rotation-due, revoked, drill.
type Event struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	By     string    `json:"by"`
	Detail string    `json:"detail,omitempty"`
}

// Status is what airlock records of a break-glass.
type Status struct {
	// Sealed is the sealed credential (seal.Prefix...); only this server's
	// seal key opens it, and only for this object's name.
	Sealed string `json:"sealed,omitempty"`
	// Fingerprint is "sha256:" and the first 12 hex digits of the
	// credential's SHA-256: enough to tell two credentials apart, not to
	// guess one.
	Fingerprint string     `json:"fingerprint,omitempty"`
	StoredAt    *time.Time `json:"storedAt,omitempty"`
	StoredBy    string     `json:"storedBy,omitempty"`
	// Handle is what the broker revokes for the current credential (not
	// a secret); empty for a credential stored by hand.
	Handle string `json:"handle,omitempty"`
	// Generation counts broker-issued credentials: the n of bg-<name>-<n>.
	Generation int `json:"generation,omitempty"`
	// ExpiresAt is when a broker-issued credential stops working; it is
	// renewed well before. Nil for a credential stored by hand.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`

	// OpenedAt, OpenedBy, Reason, ValidUntil, Incident and Review
	// describe the open that has not been rotated away yet; OpenedAt is
	// nil when there is none. While it is set, a second open is refused.
	OpenedAt   *time.Time `json:"openedAt,omitempty"`
	OpenedBy   string     `json:"openedBy,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	Incident   string     `json:"incident,omitempty"`
	Review     string     `json:"review,omitempty"`
	// RotationDue is set when the credential is opened and cleared when
	// a new one replaces it (by the broker, or by airlock breakglass
	// store).
	RotationDue bool `json:"rotationDue,omitempty"`
	// RotationReported is set once the window of an open has passed with
	// no broker to rotate it: the rotation is then reported until a new
	// credential is stored.
	RotationReported bool      `json:"rotationReported,omitempty"`
	Rotation         *Rotation `json:"rotation,omitempty"`
	// Opens counts the opens.
	Opens int `json:"opens,omitempty"`

	LastDrill *Drill `json:"lastDrill,omitempty"`
	// LastSuccessfulDrill is when a drill last passed; Overdue reads it.
	LastSuccessfulDrill *time.Time `json:"lastSuccessfulDrill,omitempty"`

	History []Event `json:"history,omitempty"`
}

func (st *Status) record(e Event) {
	st.History = append(st.History, e)
	if n := len(st.History); n > MaxHistory {
		st.History = append([]Event(nil), st.History[n-MaxHistory:]...)
	}
}

// Register adds BreakGlass (declarative) to a scheme.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name: Kind, Plural: "breakglasses", Aliases: []string{"bg"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(_ *resource.Object, spec any) error {
			v, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("breakglass: spec has type %T, want *breakglass.Spec", spec)
			}
			return Validate(*v)
		},
		Declarative: true,
	})
}

// Validate checks a spec on its own. The error is a *resource.PathError
// naming the field at fault. A broker's configuration is checked with
// broker.Validate, which reads no secret.
func Validate(s Spec) error {
	if err := resource.ValidateName(s.Environment); err != nil {
		return resource.Errorf("spec.environment", "a break-glass belongs to one environment: %v", err)
	}
	if len(s.Description) > MaxDescription {
		return resource.Errorf("spec.description", "the description is %d characters; at most %d are allowed", len(s.Description), MaxDescription)
	}
	d, err := time.ParseDuration(s.ValidFor)
	switch {
	case s.ValidFor == "":
		return resource.Errorf("spec.validFor", "validFor is required: how long an opened credential may be used before it is rotated, 5m to 24h (e.g. 1h)")
	case err != nil:
		return resource.Errorf("spec.validFor", "validFor %q is not a duration such as 1h or 30m", s.ValidFor)
	case d < MinValidFor || d > MaxValidFor:
		return resource.Errorf("spec.validFor", "validFor %s is outside 5m to 24h", s.ValidFor)
	}
	if s.DrillEvery != "" {
		d, err := time.ParseDuration(s.DrillEvery)
		switch {
		case err != nil:
			return resource.Errorf("spec.drillEvery", "drillEvery %q is not a duration such as 2160h (90 days)", s.DrillEvery)
		case d < MinDrillEvery || d > MaxDrillEvery:
			return resource.Errorf("spec.drillEvery", "drillEvery %s is outside 24h to 8784h (366 days)", s.DrillEvery)
		}
	}
	if b := s.Broker; b != nil {
		if strings.TrimSpace(b.Type) == "" {
			return resource.Errorf("spec.broker.type", "a broker needs its type; the types are %v (or leave broker out: the credential is then replaced by hand after each use)", broker.Types())
		}
		if err := broker.Validate(b.Type, b.Config); err != nil {
			return resource.Errorf("spec.broker", "%v", err)
		}
		if len(b.Grants) > MaxGrants {
			return resource.Errorf("spec.broker.grants", "%d grants; at most %d are allowed", len(b.Grants), MaxGrants)
		}
		for i, g := range b.Grants {
			if strings.TrimSpace(g) == "" {
				return resource.Errorf(fmt.Sprintf("spec.broker.grants[%d]", i), "a grant may not be empty")
			}
		}
	}
	return nil
}
