// Package access is just-in-time access to production: a person asks for
// one role on one resource of one environment for a while, with a reason;
// the people the resource's policy names approve it (never the requester;
// two different people for a high-risk role); airlock then issues a
// short-lived credential through the resource's broker, hands it to the
// requester exactly once, and revokes it when the time is up or on demand
// — even if airlock was down at that moment.
//
// The kinds: AccessResource (declared: the environment, the broker and
// its configuration, the roles with their approvals and durations) and
// AccessRequest (made through the API; its status is the state machine in
// machine.go). Team (declared) lists a team's members, for the
// outside-the-team alert.
package access

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Kinds this package owns.
const (
	ResourceKind = "AccessResource"
	RequestKind  = "AccessRequest"
	TeamKind     = "Team"
)

// Durations.
const (
	// DefaultMaxDuration is how long access to a resource may last when
	// it does not say.
	DefaultMaxDuration = 8 * time.Hour
	// MaxDuration caps every access: 14 days.
	MaxDuration = 14 * 24 * time.Hour
	// MinDuration is the shortest access one may ask for.
	MinDuration = time.Minute
	// DefaultPendingExpiry is how long a request waits for approval.
	DefaultPendingExpiry = time.Hour
)

// Limits on free text.
const (
	MaxReason    = 2000
	MinReason    = 10
	MaxPublicKey = 16 << 10
)

// ResourceSpec is a resource people may be given access to.
type ResourceSpec struct {
	Environment string `json:"environment"`
	Description string `json:"description,omitempty"`
	// Team names the Team that owns the resource; a request by someone
	// outside it raises an alert.
	Team   string     `json:"team,omitempty"`
	Broker BrokerSpec `json:"broker"`
	// MaxDuration caps a request (default 8h, at most 336h).
	MaxDuration string `json:"maxDuration,omitempty"`
	// PendingExpiry is how long a request waits for approval (default 1h).
	PendingExpiry string `json:"pendingExpiry,omitempty"`
	// BusinessHours, when set, says when access is routine.
	BusinessHours *BusinessHours    `json:"businessHours,omitempty"`
	Roles         map[string]Role   `json:"roles"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// BrokerSpec is how credentials for the resource are issued.
type BrokerSpec struct {
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config,omitempty"`
}

// BusinessHours names an allow Window; outside it a request needs an open
// incident when RequireIncident is set, and raises an alert otherwise.
type BusinessHours struct {
	Window          string `json:"window"`
	RequireIncident bool   `json:"requireIncident,omitempty"`
}

// Role is one kind of access to a resource.
type Role struct {
	Description string `json:"description,omitempty"`
	// Approvals are the roles and counts of the people who approve a
	// request; empty is refused (every access is approved).
	Approvals map[string]int `json:"approvals"`
	// HighRisk roles (write access to production data) need two different
	// approvers at least: dual approval.
	HighRisk bool `json:"highRisk,omitempty"`
	// Grants are what the role maps to on the resource (PostgreSQL roles,
	// SSH principals).
	Grants []string `json:"grants,omitempty"`
	// MaxDuration caps this role below the resource's cap.
	MaxDuration string `json:"maxDuration,omitempty"`
}

// TeamSpec is a team and its members (token or person names).
type TeamSpec struct {
	Description string   `json:"description,omitempty"`
	Members     []string `json:"members"`
}

// Register adds the kinds to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name: ResourceKind, Plural: "accessresources", Aliases: []string{"accessresource"},
		NewSpec: func() any { return &ResourceSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			r, ok := spec.(*ResourceSpec)
			if !ok {
				return fmt.Errorf("access: spec has type %T, want *access.ResourceSpec", spec)
			}
			return ValidateResource(*r)
		},
		Declarative: true,
	})
	s.Register(resource.Kind{Name: RequestKind, Plural: "accessrequests", Aliases: []string{"accessrequest", "access"}, NewSpec: func() any { return &RequestSpec{} }})
	s.Register(resource.Kind{
		Name: TeamKind, Plural: "teams", Aliases: []string{"team"},
		NewSpec: func() any { return &TeamSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			t, ok := spec.(*TeamSpec)
			if !ok {
				return fmt.Errorf("access: spec has type %T, want *access.TeamSpec", spec)
			}
			if len(t.Members) == 0 {
				return resource.Errorf("spec.members", "a team needs at least one member")
			}
			for i, m := range t.Members {
				if strings.TrimSpace(m) == "" || len(m) > resource.MaxNameLength {
					return resource.Errorf(fmt.Sprintf("spec.members[%d]", i), "member %q must be an identity name of 1 to %d characters", m, resource.MaxNameLength)
				}
			}
			return nil
		},
		Declarative: true,
	})
}

var roleNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)

// durationField parses an optional duration within [lo, hi].
func durationField(path, v string, def, lo, hi time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, resource.Errorf(path, "%q must be a duration from %s to %s, e.g. 8h", v, lo, hi)
	}
	return d, nil
}

// ValidateResource checks a resource on its own; the error is a
// *resource.PathError.
func ValidateResource(r ResourceSpec) error {
	if err := resource.ValidateName(r.Environment); err != nil {
		return resource.Errorf("spec.environment", "environment %v", err)
	}
	if r.Team != "" {
		if err := resource.ValidateName(r.Team); err != nil {
			return resource.Errorf("spec.team", "team %v", err)
		}
	}
	if r.Broker.Type == "" {
		return resource.Errorf("spec.broker.type", "a broker type is required; the types are %s", strings.Join(broker.Types(), ", "))
	}
	if err := broker.Validate(r.Broker.Type, r.Broker.Config); err != nil {
		return resource.Errorf("spec.broker", "%v", err)
	}
	maxD, err := durationField("spec.maxDuration", r.MaxDuration, DefaultMaxDuration, MinDuration, MaxDuration)
	if err != nil {
		return err
	}
	if _, err := durationField("spec.pendingExpiry", r.PendingExpiry, DefaultPendingExpiry, time.Minute, 7*24*time.Hour); err != nil {
		return err
	}
	if bh := r.BusinessHours; bh != nil {
		if err := resource.ValidateName(bh.Window); err != nil {
			return resource.Errorf("spec.businessHours.window", "window %v", err)
		}
	}
	if len(r.Roles) == 0 {
		return resource.Errorf("spec.roles", "a resource needs at least one role, e.g. readonly: {approvals: {sre: 1}}")
	}
	names := make([]string, 0, len(r.Roles))
	for n := range r.Roles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		role, path := r.Roles[n], "spec.roles."+n
		if !roleNameRE.MatchString(n) || len(n) > 63 {
			return resource.Errorf(path, "role name %q must be lower-case letters, digits, '-' or '_'", n)
		}
		if len(role.Approvals) == 0 {
			return resource.Errorf(path+".approvals", "every access is approved: give the roles and counts, e.g. {sre: 1}")
		}
		total := 0
		for who, c := range role.Approvals {
			if err := resource.ValidateName(who); err != nil {
				return resource.Errorf(path+".approvals."+who, "role %v", err)
			}
			if c < 1 || c > 10 {
				return resource.Errorf(path+".approvals."+who, "the count of %s approvals must be from 1 to 10, got %d", who, c)
			}
			total += c
		}
		if role.HighRisk && total < 2 {
			return resource.Errorf(path+".approvals", "a high-risk role needs dual approval: at least 2 approvals in all, by different people (e.g. {sre: 1, tech-lead: 1}); it asks for %d", total)
		}
		if _, err := durationField(path+".maxDuration", role.MaxDuration, maxD, MinDuration, maxD); err != nil {
			return err
		}
		for i, g := range role.Grants {
			if strings.TrimSpace(g) == "" || len(g) > 63 {
				return resource.Errorf(fmt.Sprintf("%s.grants[%d]", path, i), "grant %q must be 1 to 63 characters", g)
			}
		}
	}
	return nil
}

// Limits returns the longest access role may be given and how long a
// request waits for approval. r must be valid.
func (r ResourceSpec) Limits(role string) (maxDuration, pendingExpiry time.Duration) {
	maxD, _ := durationField("", r.MaxDuration, DefaultMaxDuration, MinDuration, MaxDuration)
	pend, _ := durationField("", r.PendingExpiry, DefaultPendingExpiry, time.Minute, 7*24*time.Hour)
	if rl, ok := r.Roles[role]; ok {
		maxD, _ = durationField("", rl.MaxDuration, maxD, MinDuration, maxD)
	}
	return maxD, pend
}

// RoleNames lists r's roles, sorted.
func (r ResourceSpec) RoleNames() []string {
	out := make([]string, 0, len(r.Roles))
	for n := range r.Roles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
