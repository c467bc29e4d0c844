// Package servertest wires a real SQLite store the way the server does,
// with a clock tests move, for the packages whose services need the whole
// world (catalog guards, the scheme, notifications).
package servertest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// Clock is a time that only moves when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Add moves the clock.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// World is a store in a temporary directory and the server's services
// over it.
type World struct {
	Dir   string
	Clock *Clock
	Store store.Store
	Deps  api.Deps
}

// New opens a SQLite store in a temporary directory whose clock starts at
// start, and wires it with server.NewDeps. The store closes with the test.
func New(t testing.TB, start time.Time) *World {
	t.Helper()
	dir := t.TempDir()
	c := &Clock{now: start}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &World{Dir: dir, Clock: c, Store: st, Deps: server.NewDeps(st, audit.NewSigner(key), nil, nil)}
}

// Apply applies a YAML document as actor, failing the test on error.
func (w *World) Apply(t testing.TB, actor store.Actor, doc string) {
	t.Helper()
	objs, err := w.Deps.Scheme.Decode("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Deps.Catalog.Apply(context.Background(), actor, objs, false); err != nil {
		t.Fatal(err)
	}
}

// Get reads an object and decodes its spec into S and its status into T,
// failing the test on any error.
func Get[S, T any](t testing.TB, r store.Reader, kind, name string) (S, T, *resource.Object) {
	t.Helper()
	var spec S
	var st T
	o, err := r.Get(context.Background(), kind, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if err := o.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	return spec, st, o
}
