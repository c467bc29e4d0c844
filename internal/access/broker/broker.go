// Package broker defines how airlock issues and revokes short-lived
// credentials for just-in-time access: a Broker grants one approved
// access (a PostgreSQL login role, an SSH certificate, whatever an exec
// command or webhook does) and revokes it at expiry or on demand.
//
// Brokers never keep secrets: the credential a Grant returns is sealed by
// the caller and handed to the requester once; the Handle, which Revoke
// receives, must not be a secret. Configuration that names secrets (an
// admin connection string, a CA key) names where to read them — an
// environment variable or a file outside the database — never the secret.
package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Grant is one approved access as a broker sees it.
type Grant struct {
	// ID is the AccessRequest's name, e.g. acc-20261127-001; brokers name
	// what they create after it, so a retried Grant finds its own work.
	ID          string
	Requester   string
	Environment string
	Resource    string
	Role        string
	// Grants are what the access role maps to on the resource: PostgreSQL
	// roles to grant, SSH principals, or free words for an exec or
	// webhook broker.
	Grants    []string
	NotBefore time.Time
	NotAfter  time.Time
	// PublicKey is the requester's public key (authorized_keys format),
	// for brokers that certify one (SSH).
	PublicKey string
}

// Issued is what a broker handed out for a grant.
type Issued struct {
	// Credential is shown once to the requester, e.g. {"dsn": ...} or
	// {"certificate": ...}. It is sealed at rest until then and never
	// logged or audited.
	Credential map[string]string
	// Handle says what to revoke (a role name, a certificate serial). It
	// is stored in the clear, so it must not be a secret.
	Handle string
}

// Broker issues and revokes access on one resource.
type Broker interface {
	// Grant issues access for g. Called again for the same g.ID (after a
	// crash), it must replace or reuse what it made, never leave two.
	Grant(ctx context.Context, g Grant) (Issued, error)
	// Revoke removes the access issued for g (handle is Issued.Handle,
	// empty when Grant never returned). Revoking what is already gone is
	// success: revocation is retried until it succeeds.
	Revoke(ctx context.Context, g Grant, handle string) error
}

// Env is what a broker reads its secrets from: os.Getenv in the server,
// a map in tests.
type Env func(name string) string

// Factory builds a broker of one type from its configuration (the
// resource's broker.<type> object, strictly decoded by the factory).
type Factory func(config json.RawMessage, env Env) (Broker, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a broker type available; packages call it from init.
func Register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[typ]; dup {
		panic("broker: type " + typ + " registered twice")
	}
	factories[typ] = f
}

// New builds a broker of type typ.
func New(typ string, config json.RawMessage, env Env) (Broker, error) {
	mu.RLock()
	f, ok := factories[typ]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown broker type %q; the types are %v", typ, Types())
	}
	return f(config, env)
}

// Types lists the registered broker types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for t := range factories {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Validator is implemented by a factory's config check, used at apply
// time without reading any secret.
type Validator func(config json.RawMessage) error

var validators = map[string]Validator{}

// RegisterValidator adds the apply-time check of a broker type's
// configuration.
func RegisterValidator(typ string, v Validator) {
	mu.Lock()
	defer mu.Unlock()
	validators[typ] = v
}

// Validate checks a broker configuration at apply time.
func Validate(typ string, config json.RawMessage) error {
	mu.RLock()
	v, known := validators[typ]
	_, built := factories[typ]
	mu.RUnlock()
	if !known && !built {
		return fmt.Errorf("unknown broker type %q; the types are %v", typ, Types())
	}
	if v == nil {
		return nil
	}
	return v(config)
}
