package access_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/access"
	"github.com/airlock-dev/airlock/internal/store"
)

// pgWorld is a world whose orders-db resource is a real PostgreSQL server
// (AIRLOCK_TEST_POSTGRES) behind the postgres broker, on its own day so
// its role names (airlock_acc_YYYYMMDD_NNN) are its own.
func pgWorld(t *testing.T, day time.Time) (*world, string) {
	t.Helper()
	dsn := os.Getenv("AIRLOCK_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("AIRLOCK_TEST_POSTGRES is not set (.ci/start-postgres starts a server)")
	}
	w := newWorld(t)
	w.clock.Set(day)
	w.env["ORDERS_DB_ADMIN_DSN"] = dsn
	prefix := "airlock_acc_" + day.Format("20060102") + "_"
	dropRoles(t, dsn, prefix)
	t.Cleanup(func() { dropRoles(t, dsn, prefix) })
	w.apply(`apiVersion: airlock.dev/v1
kind: AccessResource
metadata: {name: orders-db}
spec:
  environment: prod
  broker: {type: postgres, config: {dsnEnv: ORDERS_DB_ADMIN_DSN}}
  maxDuration: 8h
  roles:
    readonly: {approvals: {sre: 1}, grants: [pg_read_all_data]}
    readwrite: {approvals: {sre: 1, tech-lead: 1}, highRisk: true, grants: [pg_read_all_data, pg_write_all_data]}
`)
	w.restart()
	return w, prefix
}

func roles(t *testing.T, dsn, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY rolname", prefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func dropRoles(t *testing.T, dsn, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, r := range roles(t, dsn, prefix) {
		_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
}

// TestPostgresAccessEndToEnd: a request approved by an sre issues a
// PostgreSQL login that works for the requester, once handed over;
// revoking drops it and the credential stops working.
func TestPostgresAccessEndToEnd(t *testing.T) {
	w, prefix := pgWorld(t, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	ctx := context.Background()
	id, err := w.request("alice", ask("readonly", "1h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	if got := roles(t, w.env["ORDERS_DB_ADMIN_DSN"], prefix); len(got) != 1 || got[0] != prefix+"001" {
		t.Fatalf("pg_roles after approval: %v", got)
	}
	cred, err := w.svc.Credentials(ctx, store.Actor{Name: "alice"}, id)
	if err != nil || !strings.HasPrefix(cred["dsn"], "postgres://"+prefix+"001:") {
		t.Fatalf("credentials: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, cred["dsn"])
	if err != nil {
		t.Fatalf("the issued credential does not connect: %v", err)
	}
	var who string
	if err := conn.QueryRow(cctx, "SELECT current_user").Scan(&who); err != nil || who != prefix+"001" {
		t.Fatalf("connected as %q (%v)", who, err)
	}
	conn.Close(cctx)
	if _, err := w.svc.Revoke(ctx, store.Actor{Name: "alice"}, id, "done"); err != nil {
		t.Fatal(err)
	}
	if got := roles(t, w.env["ORDERS_DB_ADMIN_DSN"], prefix); len(got) != 0 {
		t.Fatalf("pg_roles after revoke: %v", got)
	}
	if c, err := pgx.Connect(cctx, cred["dsn"]); err == nil {
		c.Close(cctx)
		t.Fatal("the revoked credential still connects")
	}
}

// TestPostgres200WithRestart: 200 requests approved concurrently, airlock
// "crashing" (its context cancelled) in the middle and a new process
// reconciling, then every window ending: no role is left behind.
func TestPostgres200WithRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("200 PostgreSQL grants and revocations")
	}
	w, prefix := pgWorld(t, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	dsn := w.env["ORDERS_DB_ADMIN_DSN"]
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		id, err := w.request(fmt.Sprintf("dev%03d", i), ask("readonly", "1h"))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	crashed, crash := context.WithCancel(context.Background())
	defer crash()
	first := w.svc
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == n/2 {
				crash() // airlock dies with half the grants in flight
			}
			_, _ = first.Vote(crashed, store.Actor{Name: "bob"}, access.VoteRequest{Request: id, Decision: access.Approve, Reason: "ok", Roles: []string{"sre"}})
		}()
	}
	wg.Wait()
	// A new process: it approves what the crash lost and issues what was
	// approved but not issued.
	w.restart()
	for _, id := range ids {
		if _, st := w.get(id); st.State == access.Pending {
			if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := w.svc.RunOnce(context.Background()); err != nil {
			t.Log(err)
		}
		active := 0
		for _, id := range ids {
			if _, st := w.get(id); st.State == access.Active {
				active++
			}
		}
		if active == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d active after the restart", active, n)
		}
		w.clock.Add(31 * time.Second) // past any issue backoff
	}
	if got := roles(t, dsn, prefix); len(got) != n {
		t.Fatalf("%d roles while %d are active", len(got), n)
	}
	// Every window ends while airlock is down again.
	w.clock.Add(2 * time.Hour)
	w.restart()
	for i := 0; ; i++ {
		left := 0
		for _, id := range ids {
			if _, st := w.get(id); st.State != access.Expired {
				left++
			}
		}
		if left == 0 {
			break
		}
		if i == 20 {
			t.Fatalf("%d requests not expired", left)
		}
		w.clock.Add(31 * time.Second)
		if _, err := w.svc.RunOnce(context.Background()); err != nil {
			t.Log(err)
		}
	}
	if got := roles(t, dsn, prefix); len(got) != 0 {
		t.Fatalf("%d roles left behind: %v", len(got), got)
	}
}
