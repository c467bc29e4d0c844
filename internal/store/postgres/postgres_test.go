package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// freshDatabase is an empty database of the test's own (pgtest).
var freshDatabase = pgtest.FreshDatabase

func open(tb testing.TB) store.Store {
	tb.Helper()
	st, _, _ := openCreating(tb)
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

// A burst of commits through one replica shares its notifications (at
// most one every 5 ms, the dialect's NotifyEvery), and the other replica's
// watch, which polls only hourly, still sees every object within a second
// of the burst's end. (That the commits in a pause are announced when it
// ends, and on Close, is sqlstore's TestNotifier.)
func TestNotificationsCoalesce(t *testing.T) {
	dsn := freshDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() store.Store {
		st, err := postgres.Open(ctx, dsn, sqlstore.Options{PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	events, err := b.Watch(ctx, "Release", 0)
	if err != nil {
		t.Fatal(err)
	}

	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, "LISTEN airlock_changes"); err != nil {
		t.Fatal(err)
	}
	lctx, stopListening := context.WithCancel(ctx)
	received := make(chan []time.Time, 1)
	go func() {
		var at []time.Time
		for {
			if _, err := listener.WaitForNotification(lctx); err != nil {
				received <- at
				return
			}
			at = append(at, time.Now())
		}
	}()
	time.Sleep(200 * time.Millisecond) // b's watch reads once, then waits

	const commits = 200
	start := time.Now()
	for i := range commits {
		storetest.Create(t, a, storetest.Obj("Release", fmt.Sprintf("burst-%03d", i), nil, `{"application":"shop"}`))
	}
	end := time.Now()
	burst := end.Sub(start)

	seen := map[string]bool{}
	deadline := time.After(time.Second)
	for len(seen) < commits {
		select {
		case ev := <-events:
			if ev.Object != nil {
				seen[ev.Object.Metadata.Name] = true
			}
		case <-deadline:
			t.Fatalf("replica b's watch saw %d of the %d objects within a second of the burst's end: a commit went unannounced", len(seen), commits)
		}
	}
	time.Sleep(50 * time.Millisecond) // the last notification, if it is still on its way
	stopListening()
	at := <-received
	during := 0
	for _, r := range at {
		if r.Before(end) {
			during++
		}
	}
	// One may be on its way as the burst begins, and each pause is at
	// least 5 ms.
	most := int(burst/(5*time.Millisecond)) + 2
	t.Logf("%d commits in %s; %d notifications received during the burst (at most %d allowed), %d in all", commits, burst.Round(time.Millisecond), during, most, len(at))
	if len(at) == 0 {
		t.Fatal("no notification at all")
	}
	if during > most {
		t.Errorf("%d notifications during a burst of %s: more than one every 5 ms (at most %d)", during, burst.Round(time.Millisecond), most)
	}
}

// openCreating opens a store on a fresh database and returns it, the
// database's URL, and a function that creates a release of that name.
func openCreating(tb testing.TB) (*sqlstore.Store, string, func(name string) error) {
	tb.Helper()
	dsn := freshDatabase(tb)
	st, err := postgres.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	create := func(name string) error {
		ctx := context.Background()
		return st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
			_, err := tx.Create(ctx, storetest.Obj("Release", name, map[string]string{"app": "shop"}, `{"application":"shop"}`))
			return err
		})
	}
	return st, dsn, create
}

// TestFailedCommitChangesNothing makes the database refuse a batch's last
// statement, which goes to the server together with its COMMIT (see
// sqlstore.Dialect.Pipeline): the write fails naming the statement, nothing
// of it is stored, and the writer's connection serves the next write.
func TestFailedCommitChangesNothing(t *testing.T) {
	st, _, create := openCreating(t)
	ctx := context.Background()
	_, err := st.DB().ExecContext(ctx, `
CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_boom BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_boom();`)
	if err != nil {
		t.Fatal(err)
	}
	if err := create("before"); err != nil {
		t.Fatal(err)
	}
	seqBefore, hashBefore, err := st.Audit().Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = create("boom")
	if err == nil || !strings.Contains(err.Error(), "boom refused") || !strings.Contains(err.Error(), "store objects, labels and audit entries") {
		t.Fatalf("write refused by the database: err = %v, want the statement and the server's reason", err)
	}
	if _, err := st.Get(ctx, "Release", "boom"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get the refused release: %v, want not found", err)
	}
	var labels int
	if err := st.DB().QueryRowContext(ctx, "SELECT count(*) FROM object_labels WHERE name = 'boom'").Scan(&labels); err != nil || labels != 0 {
		t.Errorf("%d label rows of the refused release (%v), want 0", labels, err)
	}
	if seq, hash, err := st.Audit().Head(ctx); err != nil || seq != seqBefore || hash != hashBefore {
		t.Errorf("audit head %d %s (%v) after the refused write, want %d %s", seq, hash, err, seqBefore, hashBefore)
	}
	if err := create("after"); err != nil {
		t.Fatalf("the write after a refused one: %v", err)
	}
	if _, err := st.Get(ctx, "Release", "after"); err != nil {
		t.Error(err)
	}
}

// TestWriterSurvivesLostConnection ends the server side of every other
// connection, the writer's among them, between two writes: the next write
// begins on a new connection instead of failing.
func TestWriterSurvivesLostConnection(t *testing.T) {
	st, dsn, create := openCreating(t)
	ctx := context.Background()
	if err := create("first"); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var ended int
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend') t`).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("no connection to end")
	}
	if err := create("second"); err != nil {
		t.Fatalf("write after the server ended %d connections: %v", ended, err)
	}
	if _, err := st.Get(ctx, "Release", "second"); err != nil {
		t.Error(err)
	}
}
