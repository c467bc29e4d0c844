package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// freshDatabase is an empty database of the test's own (pgtest).
var freshDatabase = pgtest.FreshDatabase

func open(tb testing.TB) store.Store {
	tb.Helper()
	dsn := freshDatabase(tb)
	st, err := postgres.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestReplicas starts three stores on one database at once (racing to
// migrate) and writes through all of them, as three airlock replicas would.
func TestReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	stores := storetest.OpenConcurrently(t, 3, func() (store.Store, error) {
		return postgres.Open(context.Background(), dsn, sqlstore.Options{})
	})
	storetest.SharedWriters(t, stores...)
}

func BenchmarkAppend(b *testing.B) { storetest.BenchAppend(b, open(b)) }

func BenchmarkList(b *testing.B) { storetest.BenchList(b, open(b)) }

// BenchmarkSustained offers 5,000 creates/s for 10 s (open loop); run it
// with -benchtime=1x. The figures are only those of durable appends when
// the server runs with fsync and synchronous_commit on, which the CI server
// (.ci/start-postgres) does not: see bench/README.md.
func BenchmarkSustained(b *testing.B) {
	st := open(b)
	logDurability(b, st)
	storetest.BenchSustained(b, st, 5000, 10*time.Second)
}

// logDurability says whether the server acknowledges commits only once
// they are on disk.
func logDurability(b *testing.B, st store.Store) {
	db := st.(*sqlstore.Store).DB()
	var fsync, syncCommit string
	if err := db.QueryRow("SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		b.Fatal(err)
	}
	b.Logf("server fsync=%s synchronous_commit=%s", fsync, syncCommit)
}

// A change committed through one replica reaches another replica's watch
// at once through LISTEN/NOTIFY, not at its next poll (an hour here).
func TestWatchAcrossReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	open := func() store.Store {
		st, err := postgres.Open(context.Background(), dsn, sqlstore.Options{PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := b.Watch(ctx, "Environment", 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // b's watch reads once, then waits
	for i := range 3 {
		name := fmt.Sprintf("env-%d", i)
		start := time.Now()
		if err := a.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
			o := &resource.Object{APIVersion: resource.APIVersion, Kind: "Environment", Metadata: resource.Metadata{Name: name}}
			if err := o.SetSpec(map[string]string{"tier": "development"}); err != nil {
				return err
			}
			_, err := tx.Create(ctx, o)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-events:
			if ev.Object == nil || ev.Object.Metadata.Name != name {
				t.Fatalf("event %+v, want %s", ev, name)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("replica b saw %s after %s, want within a second", name, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("replica b's watch did not see %s within 5s", name)
		}
	}
}
