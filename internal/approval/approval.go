// Package approval records people's approvals and rejections of a
// promotion and judges them with the approvals gate. An Approval binds to
// the release's artifact digest and the pipeline (policy) revision it was
// given under, and expires after MaxAge.
//
// The gate is pure: the promotion service hands it the Approval objects of
// the promotion in gate.Input.Extra[GateType] as an []Approval.
package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Kind is the kind of an approval record.
const Kind = "Approval"

// MaxAge is how long an approval counts after it was given, unless the
// approvals gate sets maxAge.
const MaxAge = 72 * time.Hour

// MaxAge bounds for a gate's maxAge.
const (
	MinMaxAge = time.Minute
	MaxMaxAge = 30 * 24 * time.Hour
)

// EmergencyRole is the role whose single approval an emergency promotion
// needs, in place of the transition's approval policy.
const EmergencyRole = "emergency-approver"

// Policy is what an approvals gate asks for: the roles and counts, and how
// long an approval counts.
type Policy struct {
	Require map[string]int
	MaxAge  time.Duration
}

// ForEmergency returns the policy an emergency promotion is judged by: one
// approval by an emergency approver, whatever the transition requires.
func (p Policy) ForEmergency() Policy {
	return Policy{Require: map[string]int{EmergencyRole: 1}, MaxAge: p.MaxAge}
}

// Decision is an approver's verdict.
type Decision string

// Decisions.
const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
)

// Spec is one person's vote on one promotion. It is created only through
// the promotion service, never applied.
type Spec struct {
	Promotion      string   `json:"promotion"`
	Release        string   `json:"release"`
	Digest         string   `json:"digest"`         // the release's artifact digest
	PolicyRevision int64    `json:"policyRevision"` // the pipeline revision the promotion was judged by
	Approver       string   `json:"approver"`
	Roles          []string `json:"roles,omitempty"` // the roles the approver held for the target environment
	Decision       Decision `json:"decision"`
	Reason         string   `json:"reason"`
}

// Approval is a recorded vote as the gate sees it.
type Approval struct {
	Name      string
	Spec      Spec
	CreatedAt time.Time
}

// Register adds the Approval kind to s. It is not declarative.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "approvals", Aliases: []string{"approval"}, NewSpec: func() any { return &Spec{} }})
}

// Name is the object name of a vote by approver on promotion for one digest
// and policy revision: a second vote by the same person on the same
// digest and revision has the same name.
func Name(promotion, approver, digest string, policyRevision int64) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", approver, digest, policyRevision)))
	suffix := "-" + hex.EncodeToString(sum[:6])
	p := promotion
	if len(p)+len(suffix) > resource.MaxNameLength {
		p = strings.Trim(p[:resource.MaxNameLength-len(suffix)], "-.")
	}
	return p + suffix
}
