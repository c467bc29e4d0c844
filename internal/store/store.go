// Package store is airlock's revisioned object store port: the one narrow
// interface every domain service writes through, its error values, and (in
// storetest) the conformance suite every implementation passes.
//
// Every mutation appends an audit entry in the same transaction. The
// object's new revision is that entry's sequence number, so revisions are
// global, strictly increasing, and a watch can resume from any of them.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Errors an implementation returns, wrapped with context. The API maps them
// to HTTP statuses in one place.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a failed compare-and-swap or a create of an existing name.
	ErrConflict = errors.New("conflict")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store closed")
)

// NotFound returns an error for a missing object that wraps ErrNotFound.
func NotFound(kind, name string) error {
	return fmt.Errorf("%s %q %w", kind, name, ErrNotFound)
}

// Store is the object store. Implementations are safe for concurrent use.
type Store interface {
	Reader
	// Write runs fn in one transaction together with the audit entries of
	// every mutation fn makes. If fn returns an error, or any entry cannot be
	// written, nothing fn did is kept. fn may be called at most once, and
	// must not keep tx after it returns. Implementations may commit several
	// callers' functions together (group commit); each still sees its own
	// reads and writes and succeeds or fails on its own.
	Write(ctx context.Context, actor Actor, fn func(tx Tx) error) error
	// Watch streams changes of kind (all kinds when kind is "") with a
	// revision greater than after, until ctx ends. The channel is closed
	// when the watch ends; a slow reader is not dropped but falls behind.
	Watch(ctx context.Context, kind string, after int64) (<-chan Event, error)
	// PrepareBlob reads r to its end and returns the content ready to
	// store: its digest ("sha256:<hex>"), its length, and the stored form
	// (implementations may compress, so memory need not hold the content
	// uncompressed). It runs outside any transaction, so preparing a large
	// document does not hold up other writers.
	PrepareBlob(r io.Reader) (*PreparedBlob, error)
	// Audit gives read access to the audit log.
	Audit() AuditLog
	// Close releases the store's resources.
	Close() error
}

// Reader reads objects. A Tx is also a Reader that sees its own writes.
type Reader interface {
	// Get returns the object or an error wrapping ErrNotFound.
	Get(ctx context.Context, kind, name string) (*resource.Object, error)
	// List returns the objects of kind whose labels match sel, by name.
	List(ctx context.Context, kind string, sel resource.Selector) ([]*resource.Object, error)
	// Blob returns the content stored under digest ("sha256:<hex>"), or an
	// error wrapping ErrNotFound.
	Blob(ctx context.Context, digest string) ([]byte, error)
}

// PreparedBlob is content ready for Tx.PutBlob. Data is the
// implementation's stored form; only the store that prepared it reads it.
type PreparedBlob struct {
	Digest string
	Size   int64
	Data   []byte
}

// Actor is who is making a change, as recorded in the audit entry.
type Actor struct {
	Name   string // token identity, or "system:..." for airlock itself
	Reason string // free text the user gave (--reason); may be empty
}

type auditNoteKey struct{}

// WithAuditNote returns ctx carrying note, which the audit entries of the
// writes made with it append to the actor's reason: what one write changed
// (e.g. a flag's "enabled: true → false"), where the actor's reason says
// why the whole transaction happened. A note must hold no secret.
func WithAuditNote(ctx context.Context, note string) context.Context {
	return context.WithValue(ctx, auditNoteKey{}, note)
}

// AuditNote returns the note WithAuditNote put in ctx, or "".
func AuditNote(ctx context.Context) string {
	s, _ := ctx.Value(auditNoteKey{}).(string)
	return s
}

// Tx is one write transaction. Its methods set metadata.revision and the
// timestamps on the objects they return.
type Tx interface {
	Reader
	// Create stores a new object; an existing name is ErrConflict.
	Create(ctx context.Context, obj *resource.Object) (*resource.Object, error)
	// Update replaces an object. When obj.Metadata.Revision is non-zero it
	// must equal the stored revision, or ErrConflict is returned.
	Update(ctx context.Context, obj *resource.Object) (*resource.Object, error)
	// Delete removes an object. A non-zero revision must match, as in Update.
	Delete(ctx context.Context, kind, name string, revision int64) error
	// PutBlob stores a blob prepared with Store.PrepareBlob. Storing the
	// same content twice keeps one copy. A blob is not audited by itself:
	// the object that refers to it is.
	PutBlob(ctx context.Context, b *PreparedBlob) error
	// Record appends an audit entry that changes no object (for example a
	// token that was shown, or a verification that was run).
	Record(ctx context.Context, action, kind, name string, stateHash string) error
	// Now is the transaction's timestamp, as written into the entries.
	Now() time.Time
}

// EventType says what happened to an object.
type EventType string

// Event types a watch delivers.
const (
	Created EventType = "created"
	Updated EventType = "updated"
	Deleted EventType = "deleted"
)

// Event is one change delivered by Watch. Object is the state after the
// change, or nil for Deleted.
type Event struct {
	Type     EventType        `json:"type"`
	Kind     string           `json:"kind"`
	Name     string           `json:"name"`
	Revision int64            `json:"revision"`
	Object   *resource.Object `json:"object,omitempty"`
}

// AuditFilter selects entries for AuditLog.Entries.
type AuditFilter struct {
	Actor string
	Kind  string
	Since time.Time
	After int64 // sequence numbers greater than this
	Limit int   // 0 for all
}

// AuditLog reads the audit log and stores checkpoints.
type AuditLog interface {
	// Entries calls fn for each entry matching f in sequence order, stopping
	// at the first error fn returns.
	Entries(ctx context.Context, f AuditFilter, fn func(audit.Entry) error) error
	// Head returns the last entry's sequence number and hash (0 and the
	// genesis hash for an empty log).
	Head(ctx context.Context) (seq int64, hash string, err error)
	// AddCheckpoint stores a signed checkpoint.
	AddCheckpoint(ctx context.Context, c audit.Checkpoint) error
	// Checkpoints returns every checkpoint in order of size.
	Checkpoints(ctx context.Context) ([]audit.Checkpoint, error)
}
