// Package auth holds airlock's identities: bearer tokens (random, shown
// once, stored hashed), the roles they carry, role bindings that may be
// limited to named environments, and the authorizer that decides every API
// call from one permission table.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Role is a named set of permissions.
type Role string

// The roles airlock knows.
const (
	Admin         Role = "admin"
	Deployer      Role = "deployer"
	CI            Role = "ci"
	TechLead      Role = "tech-lead"
	Security      Role = "security"
	SRE           Role = "sre"
	BusinessOwner Role = "business-owner"
	Auditor       Role = "auditor"
	// EmergencyApprover may give the single approval an emergency
	// promotion needs (never for their own request).
	EmergencyApprover Role = "emergency-approver"
	// Evaluator is an application's flag evaluation key: it evaluates the
	// flags of the one environment its grant names, over OFREP, and
	// nothing else.
	Evaluator Role = "evaluator"
)

// Roles lists every role, in the order help texts show them.
var Roles = []Role{Admin, Deployer, CI, TechLead, Security, SRE, BusinessOwner, EmergencyApprover, Auditor, Evaluator}

// ParseRole checks that s names a role.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown role %q; roles: %s", s, strings.Join(names, ", "))
}

// Kind names of the resources this package owns.
const (
	TokenKind       = "Token"
	RoleBindingKind = "RoleBinding"
)

// TokenSpec is what a Token grants. The secret is never part of it.
type TokenSpec struct {
	Roles        []Role     `json:"roles"`
	Environments []string   `json:"environments,omitempty"`
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
	Description  string     `json:"description,omitempty"`
}

// TokenStatus is what the system records of a token. SecretHash is the
// SHA-256 of the secret; the API never returns it.
type TokenStatus struct {
	SecretHash string     `json:"secretHash,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
	RevokedBy  string     `json:"revokedBy,omitempty"`
}

// RoleBindingSpec grants roles to a token identity, optionally only in the
// named environments.
type RoleBindingSpec struct {
	Subject      string   `json:"subject"`
	Roles        []Role   `json:"roles"`
	Environments []string `json:"environments,omitempty"`
}

// Register adds Token and RoleBinding to a scheme.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name: TokenKind, Plural: "tokens", Aliases: []string{"token", "tok"},
		NewSpec: func() any { return &TokenSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			sp := spec.(*TokenSpec)
			return validateGrant("spec", sp.Roles, sp.Environments)
		},
	})
	s.Register(resource.Kind{
		Name: RoleBindingKind, Plural: "rolebindings", Aliases: []string{"rolebinding", "rb"},
		NewSpec:     func() any { return &RoleBindingSpec{} },
		Declarative: true,
		Validate: func(_ *resource.Object, spec any) error {
			sp := spec.(*RoleBindingSpec)
			if err := resource.ValidateName(sp.Subject); err != nil {
				return resource.Errorf("spec.subject", "%v (the subject is a token's name)", err)
			}
			return validateGrant("spec", sp.Roles, sp.Environments)
		},
	})
}

func validateGrant(path string, roles []Role, envs []string) error {
	if len(roles) == 0 {
		return resource.Errorf(path+".roles", "give at least one role")
	}
	for i, r := range roles {
		if _, err := ParseRole(string(r)); err != nil {
			return resource.Errorf(fmt.Sprintf("%s.roles[%d]", path, i), "%v", err)
		}
	}
	for i, e := range envs {
		if err := resource.ValidateName(e); err != nil {
			return resource.Errorf(fmt.Sprintf("%s.environments[%d]", path, i), "%v", err)
		}
	}
	return nil
}

// TokenPrefix starts every airlock token, so secret scanners can find them.
const TokenPrefix = "alk_"

// NewSecret returns a fresh token for identity name and the hash to store.
// The token embeds the name so the server can find its record without
// scanning; only the random part is secret.
func NewSecret(name string) (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	secret := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	token = TokenPrefix + name + "_" + secret
	return token, HashSecret(token), nil
}

// HashSecret returns the stored form of a token.
func HashSecret(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseToken returns the identity name a token claims, without checking it.
func ParseToken(token string) (name string, ok bool) {
	rest, found := strings.CutPrefix(token, TokenPrefix)
	if !found {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	return rest[:i], true
}

// ErrUnauthenticated means no valid token was presented.
var ErrUnauthenticated = errors.New("unauthenticated")

// Grant is one set of roles, limited to Environments when that is non-empty.
type Grant struct {
	Roles        []Role   `json:"roles"`
	Environments []string `json:"environments,omitempty"`
	From         string   `json:"from"` // "token" or "RoleBinding/NAME"
}

// Principal is an authenticated identity and everything granted to it.
type Principal struct {
	Name   string  `json:"name"`
	Grants []Grant `json:"grants"`
}

// HasRole reports whether p holds role r in env (any environment when env
// is ""). A grant limited to environments counts only for those.
func (p *Principal) HasRole(r Role, env string) bool {
	for _, g := range p.Grants {
		if slices.Contains(g.Roles, r) && (len(g.Environments) == 0 || (env != "" && slices.Contains(g.Environments, env))) {
			return true
		}
	}
	return false
}

// HoldsRole reports whether any of p's grants carries r, wherever it
// applies. A sign-off is a statement about a release, not an action in an
// environment, so it needs the role but not an environment.
func (p *Principal) HoldsRole(r Role) bool {
	for _, g := range p.Grants {
		if slices.Contains(g.Roles, r) {
			return true
		}
	}
	return false
}

// RoleNames lists p's roles, for display.
func (p *Principal) RoleNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range p.Grants {
		for _, r := range g.Roles {
			if !seen[string(r)] {
				seen[string(r)] = true
				out = append(out, string(r))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Store is the part of storage authentication needs.
type Store interface {
	Get(ctx context.Context, kind, name string) (*resource.Object, error)
	List(ctx context.Context, kind string, sel resource.Selector) ([]*resource.Object, error)
}

// Authenticate resolves a bearer token to a principal: the token must exist,
// match its stored hash, and be neither revoked nor expired. Role bindings
// naming the identity add their grants.
func Authenticate(ctx context.Context, st Store, token string, now time.Time) (*Principal, error) {
	name, ok := ParseToken(token)
	if !ok {
		return nil, fmt.Errorf("%w: the token is not an airlock token (they start with %q)", ErrUnauthenticated, TokenPrefix)
	}
	obj, err := st.Get(ctx, TokenKind, name)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown or revoked token", ErrUnauthenticated)
	}
	var spec TokenSpec
	var status TokenStatus
	if err := obj.DecodeSpec(&spec); err != nil {
		return nil, fmt.Errorf("decode token %s: %w", name, err)
	}
	if err := obj.DecodeStatus(&status); err != nil {
		return nil, fmt.Errorf("decode token %s: %w", name, err)
	}
	if subtle.ConstantTimeCompare([]byte(HashSecret(token)), []byte(status.SecretHash)) != 1 {
		return nil, fmt.Errorf("%w: unknown or revoked token", ErrUnauthenticated)
	}
	if status.RevokedAt != nil {
		return nil, fmt.Errorf("%w: token %q was revoked at %s", ErrUnauthenticated, name, status.RevokedAt.Format(time.RFC3339))
	}
	if spec.ExpiresAt != nil && !now.Before(*spec.ExpiresAt) {
		return nil, fmt.Errorf("%w: token %q expired at %s", ErrUnauthenticated, name, spec.ExpiresAt.Format(time.RFC3339))
	}
	p := &Principal{Name: name, Grants: []Grant{{Roles: spec.Roles, Environments: spec.Environments, From: "token"}}}
	bindings, err := st.List(ctx, RoleBindingKind, nil)
	if err != nil {
		return nil, fmt.Errorf("load role bindings: %w", err)
	}
	for _, b := range bindings {
		var rb RoleBindingSpec
		if err := b.DecodeSpec(&rb); err != nil {
			return nil, fmt.Errorf("decode role binding %s: %w", b.Metadata.Name, err)
		}
		if rb.Subject == name {
			p.Grants = append(p.Grants, Grant{Roles: rb.Roles, Environments: rb.Environments, From: "RoleBinding/" + b.Metadata.Name})
		}
	}
	return p, nil
}
