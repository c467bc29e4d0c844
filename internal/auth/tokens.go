package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Tokens issues and revokes tokens through the store, so each change is
// audited. The secret is returned once and never stored or logged.
type Tokens struct {
	store store.Store
}

// NewTokens returns a token service over st.
func NewTokens(st store.Store) *Tokens { return &Tokens{store: st} }

// CreateRequest asks for a new token.
type CreateRequest struct {
	Name         string     `json:"name"`
	Roles        []Role     `json:"roles"`
	Environments []string   `json:"environments,omitempty"`
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
	Description  string     `json:"description,omitempty"`
}

// Issued is a new token with its secret, shown to the caller once.
type Issued struct {
	Name         string     `json:"name"`
	Token        string     `json:"token"`
	Roles        []Role     `json:"roles"`
	Environments []string   `json:"environments,omitempty"`
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
	Revision     int64      `json:"revision"`
}

// InvalidError is a token request that cannot be granted as asked.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Create issues a token for identity req.Name. A name in use (even by a
// revoked token) is a conflict: identities are never reused, so the audit
// log always means one party by one name.
func (t *Tokens) Create(ctx context.Context, actor store.Actor, req CreateRequest) (*Issued, error) {
	if err := resource.ValidateName(req.Name); err != nil {
		return nil, &InvalidError{Msg: "token name: " + err.Error()}
	}
	if err := validateGrant("", req.Roles, req.Environments); err != nil {
		var pe *resource.PathError
		if errors.As(err, &pe) {
			return nil, &InvalidError{Msg: pe.Path[1:] + ": " + pe.Msg}
		}
		return nil, &InvalidError{Msg: err.Error()}
	}
	secret, hash, err := NewSecret(req.Name)
	if err != nil {
		return nil, err
	}
	return t.create(ctx, actor, req, secret, hash)
}

func (t *Tokens) create(ctx context.Context, actor store.Actor, req CreateRequest, secret, hash string) (*Issued, error) {
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: TokenKind, Metadata: resource.Metadata{Name: req.Name}}
	if err := obj.SetSpec(TokenSpec{Roles: req.Roles, Environments: req.Environments, ExpiresAt: req.ExpiresAt, Description: req.Description}); err != nil {
		return nil, err
	}
	if err := obj.SetStatus(TokenStatus{SecretHash: hash}); err != nil {
		return nil, err
	}
	var created *resource.Object
	err := t.store.Write(ctx, actor, func(tx store.Tx) error {
		if req.ExpiresAt != nil && !req.ExpiresAt.After(tx.Now()) {
			return &InvalidError{Msg: fmt.Sprintf("expiresAt %s is in the past", req.ExpiresAt.Format(time.RFC3339))}
		}
		if _, err := tx.Get(ctx, TokenKind, req.Name); err == nil {
			return fmt.Errorf("token %q already exists: %w; identities are never reused, pick another name", req.Name, store.ErrConflict)
		}
		var err error
		created, err = tx.Create(ctx, obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Issued{Name: req.Name, Token: secret, Roles: req.Roles, Environments: req.Environments, ExpiresAt: req.ExpiresAt, Revision: created.Metadata.Revision}, nil
}

// Revoke marks a token revoked; it stops working at once. Revoking twice is
// not an error and changes nothing the second time.
func (t *Tokens) Revoke(ctx context.Context, actor store.Actor, name string) (*resource.Object, error) {
	var out *resource.Object
	err := t.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, TokenKind, name)
		if err != nil {
			return err
		}
		var st TokenStatus
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		if st.RevokedAt != nil {
			out = obj
			return nil
		}
		now := tx.Now()
		st.RevokedAt, st.RevokedBy = &now, actor.Name
		if err := obj.SetStatus(st); err != nil {
			return err
		}
		out, err = tx.Update(ctx, obj)
		return err
	})
	return out, err
}

// Redact removes the secret hash from a token object before it leaves the
// server.
func Redact(obj *resource.Object) *resource.Object {
	if obj.Kind != TokenKind {
		return obj
	}
	var st TokenStatus
	if err := obj.DecodeStatus(&st); err != nil {
		return obj
	}
	st.SecretHash = ""
	c := obj.DeepCopy()
	_ = c.SetStatus(st)
	return c
}

// AdminTokenFile is where the bootstrap admin token is written in the data
// directory.
const AdminTokenFile = "admin.token"

// Bootstrap creates the "admin" identity on first start and writes its
// token to dir/admin.token with mode 0600. When the admin token already
// exists it does nothing, so restarts and further replicas leave it alone.
func (t *Tokens) Bootstrap(ctx context.Context, dir string) (created bool, err error) {
	if _, err := t.store.Get(ctx, TokenKind, "admin"); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	// The secret reaches the disk before the store, so a crash between the
	// two can never leave an admin identity whose token nobody has.
	secret, hash, err := NewSecret("admin")
	if err != nil {
		return false, err
	}
	path := filepath.Join(dir, AdminTokenFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("write %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	_, err = t.create(ctx, store.Actor{Name: "system:bootstrap", Reason: "first start: bootstrap admin token"}, CreateRequest{
		Name: "admin", Roles: []Role{Admin}, Description: "bootstrap administrator; create personal tokens and revoke this one",
	}, secret, hash)
	if errors.Is(err, store.ErrConflict) {
		return false, nil // another replica bootstrapped first
	}
	if err != nil {
		return false, fmt.Errorf("bootstrap admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
