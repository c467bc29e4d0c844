package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// The tests run against the PostgreSQL in AIRLOCK_TEST_POSTGRES, a
// superuser connection string (.ci/start-postgres prints one).
//
// Such a server trusts local connections, which would make passwords and
// VALID UNTIL meaningless: PostgreSQL checks both only when it asks for a
// password. TestMain therefore creates a group role for this run and puts
// one line at the top of the server's pg_hba.conf requiring scram-sha-256
// of its members, and removes it again at the end. Roles the tests issue
// are made members of that group, so their logins go through password
// authentication; nothing else on the server is affected.
var (
	adminDSN string
	// runID makes this run's grant IDs, roles and tables its own, so
	// parallel runs on one server do not collide.
	runID string
	// pwGroup is the group whose members must log in with a password.
	pwGroup string
)

func TestMain(m *testing.M) {
	adminDSN = os.Getenv("AIRLOCK_TEST_POSTGRES")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	runID = "t" + hex.EncodeToString(b)
	pwGroup = "airlocktest_" + runID + "_pwauth"
	if adminDSN == "" {
		os.Exit(m.Run())
	}
	undo, err := requirePasswordAuth(adminDSN)
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgres broker tests: arranging password authentication for issued roles: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := undo(); err != nil {
		fmt.Fprintf(os.Stderr, "postgres broker tests: removing the pg_hba.conf line of run %s: %v\n", runID, err)
		code = 1
	}
	os.Exit(code)
}

// hbaLock is the advisory lock key held while pg_hba.conf is rewritten.
const hbaLock = 0x61697268 // "airh"

func requirePasswordAuth(dsn string) (undo func() error, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{pwGroup}.Sanitize()+" NOLOGIN"); err != nil {
		return nil, err
	}
	line := "host all +" + pwGroup + " all scram-sha-256 # airlock broker/postgres tests, run " + runID + "\n"
	if err := editHBA(ctx, conn, func(s string) string { return line + s }); err != nil {
		_, _ = conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{pwGroup}.Sanitize())
		return nil, err
	}
	undo = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		err = editHBA(ctx, conn, func(s string) string { return strings.Replace(s, line, "", 1) })
		if _, err2 := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{pwGroup}.Sanitize()); err == nil {
			err = err2
		}
		return err
	}

	// Wait for the reload to take effect: a member's wrong password must
	// be refused.
	probe := "airlocktest_" + runID + "_probe"
	pident := pgx.Identifier{probe}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE ROLE "+pident+" LOGIN PASSWORD 'right-password' IN ROLE "+pgx.Identifier{pwGroup}.Sanitize()); err != nil {
		return undo, errors.Join(err, undo())
	}
	defer conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+pident)
	wrong := replaceUserString(dsn, probe, "wrong-password")
	for {
		c, err := pgx.Connect(ctx, wrong)
		if err != nil && ctx.Err() == nil {
			break
		}
		if c != nil {
			c.Close(ctx)
		}
		if ctx.Err() != nil {
			return undo, errors.Join(errors.New("the server still accepts a wrong password after pg_hba.conf was changed"), undo())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return undo, nil
}

// editHBA rewrites the server's pg_hba.conf through edit (with the file
// functions a superuser has) and reloads the configuration, under an
// advisory lock. A result PostgreSQL cannot parse is put back.
func editHBA(ctx context.Context, conn *pgx.Conn, edit func(string) string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", hbaLock); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", hbaLock)
	var path, before string
	if err := conn.QueryRow(ctx, "SELECT current_setting('hba_file'), pg_read_file(current_setting('hba_file'))").Scan(&path, &before); err != nil {
		return err
	}
	write := func(content string) error {
		var oid uint32
		if err := conn.QueryRow(ctx, "SELECT lo_from_bytea(0, convert_to($1, 'UTF8'))", content).Scan(&oid); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "SELECT lo_export($1, $2)", oid, path)
		_, err2 := conn.Exec(ctx, "SELECT lo_unlink($1)", oid)
		return errors.Join(err, err2)
	}
	if err := write(edit(before)); err != nil {
		return err
	}
	var bad int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL").Scan(&bad); err != nil || bad > 0 {
		return errors.Join(fmt.Errorf("the edited pg_hba.conf has %d bad lines; put back", bad), err, write(before))
	}
	_, err := conn.Exec(ctx, "SELECT pg_reload_conf()")
	return err
}

// replaceUserString puts user and password into a URL connection string.
func replaceUserString(dsn, user, password string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic("AIRLOCK_TEST_POSTGRES must be a URL: " + err.Error())
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func replaceUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	if _, err := url.Parse(dsn); err != nil {
		t.Fatalf("AIRLOCK_TEST_POSTGRES must be a URL: %v", err)
	}
	return replaceUserString(dsn, user, password)
}

func needDB(t *testing.T) {
	t.Helper()
	if adminDSN == "" {
		t.Skip("AIRLOCK_TEST_POSTGRES is not set")
	}
}

// newBroker returns a broker over the test server, its admin DSN in the
// variable TEST_ADMIN_DSN.
func newBroker(t *testing.T) *Broker {
	t.Helper()
	return newBrokerConfig(t, Config{DSNEnv: "TEST_ADMIN_DSN"})
}

func newBrokerConfig(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg, func(name string) string {
		if name == "TEST_ADMIN_DSN" {
			return adminDSN
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func admin(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newGrant returns a grant of roles for one hour with an ID unique to this
// run, and drops its role when the test ends, whatever happened.
func newGrant(t *testing.T, name string, roles ...string) broker.Grant {
	t.Helper()
	now := time.Now()
	g := broker.Grant{
		ID:          "acc-" + runID + "-" + name,
		Requester:   "alice@example.com",
		Environment: "prod",
		Resource:    "orders-db",
		Role:        "readonly",
		Grants:      append(roles, pwGroup),
		NotBefore:   now,
		NotAfter:    now.Add(time.Hour).Truncate(time.Second),
	}
	role, err := RoleName(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropRole(t, role) })
	return g
}

func dropRole(t *testing.T, role string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Errorf("cleanup of role %s: %v", role, err)
		return
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{role}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil || !exists {
		return
	}
	_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
	for _, stmt := range []string{"DROP OWNED BY " + id, "DROP ROLE IF EXISTS " + id} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Errorf("cleanup of role %s: %s: %v", role, stmt, err)
		}
	}
}

// ordersTable creates a table with one row, owned by the admin, and drops
// it when the test ends.
func ordersTable(t *testing.T, name string) string {
	t.Helper()
	table := "airlocktest_" + runID + "_" + name
	id := pgx.Identifier{table}.Sanitize()
	conn := admin(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE TABLE "+id+" (id int PRIMARY KEY, item text); INSERT INTO "+id+" VALUES (1, 'widget')"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id); err != nil {
			t.Errorf("drop table %s: %v", table, err)
		}
	})
	return id
}

type pgRole struct {
	exists     bool
	canLogin   bool
	validUntil time.Time
	memberOf   []string
}

func lookupRole(t *testing.T, role string) pgRole {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := admin(t)
	var r pgRole
	var valid *time.Time
	err := conn.QueryRow(ctx, `SELECT rolcanlogin, rolvaliduntil,
		ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)
		FROM pg_roles r WHERE rolname = $1`, role).Scan(&r.canLogin, &valid, &r.memberOf)
	if errors.Is(err, pgx.ErrNoRows) {
		return r
	}
	if err != nil {
		t.Fatal(err)
	}
	r.exists = true
	if valid != nil {
		r.validUntil = *valid
	}
	return r
}

func connectAs(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestGrantReadOnly(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	table := ordersTable(t, "readonly")
	g := newGrant(t, "readonly", "pg_read_all_data")

	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	role, _ := RoleName(g.ID)
	if iss.Handle != role || iss.Credential["user"] != role {
		t.Fatalf("Handle %q, user %q; want the role %q", iss.Handle, iss.Credential["user"], role)
	}
	if pw := iss.Credential["password"]; len(pw) < 64 || strings.Contains(iss.Handle, pw) {
		t.Fatalf("password %q is shorter than 32 random bytes in hex", pw)
	}
	if got, want := iss.Credential["validUntil"], g.NotAfter.UTC().Format(time.RFC3339); got != want {
		t.Errorf("validUntil = %q, want %q", got, want)
	}
	u, err := url.Parse(iss.Credential["dsn"])
	if err != nil {
		t.Fatalf("issued dsn does not parse: %v", err)
	}
	if u.Query().Get("sslmode") != "disable" {
		t.Errorf("issued dsn %s: sslmode %q, want the admin DSN's (disable)", u.Redacted(), u.Query().Get("sslmode"))
	}

	r := lookupRole(t, role)
	if !r.exists || !r.canLogin {
		t.Fatalf("pg_roles: %s exists=%v canlogin=%v, want a login role", role, r.exists, r.canLogin)
	}
	if !r.validUntil.Equal(g.NotAfter) {
		t.Errorf("rolvaliduntil = %v, want NotAfter %v", r.validUntil, g.NotAfter)
	}
	if want := []string{pwGroup, "pg_read_all_data"}; strings.Join(r.memberOf, ",") != strings.Join(want, ",") {
		t.Errorf("member of %v, want %v", r.memberOf, want)
	}

	conn, err := connectAs(t, iss.Credential["dsn"])
	if err != nil {
		t.Fatalf("connect with the issued dsn: %v", err)
	}
	var item string
	if err := conn.QueryRow(ctx, "SELECT item FROM "+table+" WHERE id = 1").Scan(&item); err != nil || item != "widget" {
		t.Fatalf("SELECT as %s: %q, %v; want widget", role, item, err)
	}
	_, err = conn.Exec(ctx, "INSERT INTO "+table+" VALUES (2, 'gadget')")
	if pgCode(err) != "42501" {
		t.Fatalf("INSERT as the read-only role: %v, want insufficient_privilege (42501)", err)
	}

	// The password is what lets it in.
	wrong := replaceUser(t, iss.Credential["dsn"], role, strings.Repeat("0", 64))
	if _, err := connectAs(t, wrong); pgCode(err) != "28P01" {
		t.Fatalf("connect with a wrong password: %v, want invalid_password (28P01)", err)
	}
}

func TestGrantReadWrite(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	table := ordersTable(t, "readwrite")
	g := newGrant(t, "readwrite", "pg_read_all_data", "pg_write_all_data")

	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	conn, err := connectAs(t, iss.Credential["dsn"])
	if err != nil {
		t.Fatalf("connect with the issued dsn: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES (2, 'gadget')"); err != nil {
		t.Fatalf("INSERT as the read-write role: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	table := ordersTable(t, "revoke")
	g := newGrant(t, "revoke", "pg_read_all_data")

	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	session, err := connectAs(t, iss.Credential["dsn"])
	if err != nil {
		t.Fatalf("connect with the issued dsn: %v", err)
	}
	if _, err := session.Exec(ctx, "SELECT count(*) FROM "+table); err != nil {
		t.Fatalf("SELECT before revocation: %v", err)
	}

	if err := b.Revoke(ctx, g, iss.Handle); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := lookupRole(t, iss.Handle); r.exists {
		t.Fatalf("role %s is still in pg_roles after Revoke", iss.Handle)
	}
	// The session is terminated, not merely left without a role.
	var alive int
	if err := admin(t).QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", session.PgConn().PID()).Scan(&alive); err != nil {
		t.Fatal(err)
	}
	if alive != 0 {
		t.Fatalf("the backend (pid %d) of the session opened before revocation is still in pg_stat_activity", session.PgConn().PID())
	}
	if _, err := session.Exec(ctx, "SELECT count(*) FROM "+table); err == nil {
		t.Fatal("the session opened before revocation still runs queries")
	}
	if _, err := connectAs(t, iss.Credential["dsn"]); err == nil {
		t.Fatal("a new connection with the revoked dsn succeeded")
	}
	if err := b.Revoke(ctx, g, iss.Handle); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if err := b.Revoke(ctx, g, ""); err != nil {
		t.Fatalf("Revoke without a handle of an absent role: %v", err)
	}
}

// TestRevokeWithoutHandle revokes a grant whose handle was never
// recorded (Grant succeeded but airlock crashed before storing it).
func TestRevokeWithoutHandle(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	g := newGrant(t, "nohandle", "pg_read_all_data")
	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if err := b.Revoke(ctx, g, ""); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := lookupRole(t, iss.Handle); r.exists {
		t.Fatalf("role %s is still in pg_roles after Revoke with an empty handle", iss.Handle)
	}
}

func TestRevokeRefusesForeignHandle(t *testing.T) {
	needDB(t)
	t.Parallel()
	b := newBroker(t)
	g := newGrant(t, "foreign")
	err := b.Revoke(context.Background(), g, "postgres")
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Revoke with handle postgres: %v, want a refusal", err)
	}
}

func TestRevokeDropsOwnedObjects(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	g := newGrant(t, "owner", "pg_read_all_data")
	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	// An object the role owns (created by the admin on its behalf, as a
	// role with CREATE on a schema would) must not block DROP ROLE.
	table := pgx.Identifier{"airlocktest_" + runID + "_owned"}.Sanitize()
	conn := admin(t)
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (x int); ALTER TABLE "+table+" OWNER TO "+pgx.Identifier{iss.Handle}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, g, iss.Handle); err != nil {
		t.Fatalf("Revoke of a role owning a table: %v", err)
	}
	if r := lookupRole(t, iss.Handle); r.exists {
		t.Fatalf("role %s is still in pg_roles", iss.Handle)
	}
	var owner string
	if err := conn.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = $1", "airlocktest_"+runID+"_owned").Scan(&owner); err != nil {
		t.Fatalf("the owned table is gone, want it reassigned: %v", err)
	}
	var current string
	_ = conn.QueryRow(ctx, "SELECT current_user").Scan(&current)
	if owner != current {
		t.Errorf("table owner after Revoke = %q, want the admin %q", owner, current)
	}
}

func TestGrantRetry(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	table := ordersTable(t, "retry")
	g := newGrant(t, "retry", "pg_read_all_data", "pg_write_all_data")

	first, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("first Grant: %v", err)
	}
	g.Grants = []string{"pg_read_all_data", pwGroup}
	g.NotAfter = g.NotAfter.Add(30 * time.Minute)
	second, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("retried Grant: %v", err)
	}
	if first.Handle != second.Handle {
		t.Fatalf("handles %q and %q differ", first.Handle, second.Handle)
	}
	var n int
	if err := admin(t).QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", likePrefix("acc-"+runID+"-retry")).Scan(&n); err != nil || n != 1 {
		t.Fatalf("roles for the grant: %d, %v; want 1", n, err)
	}
	r := lookupRole(t, second.Handle)
	if !r.validUntil.Equal(g.NotAfter) {
		t.Errorf("rolvaliduntil = %v, want the retried NotAfter %v", r.validUntil, g.NotAfter)
	}
	if want := pwGroup + ",pg_read_all_data"; strings.Join(r.memberOf, ",") != want {
		t.Errorf("member of %v, want only %s", r.memberOf, want)
	}
	if _, err := connectAs(t, first.Credential["dsn"]); pgCode(err) != "28P01" {
		t.Errorf("connect with the first password: %v, want invalid_password (28P01)", err)
	}
	conn, err := connectAs(t, second.Credential["dsn"])
	if err != nil {
		t.Fatalf("connect with the retried grant's dsn: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES (3, 'x')"); pgCode(err) != "42501" {
		t.Errorf("INSERT after the retried grant dropped pg_write_all_data: %v, want 42501", err)
	}
}

func TestGrantUnknownRole(t *testing.T) {
	needDB(t)
	t.Parallel()
	b := newBroker(t)
	missing := "airlocktest_" + runID + "_no_such_role"
	g := newGrant(t, "unknown", "pg_read_all_data", missing)
	_, err := b.Grant(context.Background(), g)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Grant with an unknown role: %v, want an error naming %s", err, missing)
	}
	role, _ := RoleName(g.ID)
	if r := lookupRole(t, role); r.exists {
		t.Fatalf("role %s was left behind by a failed Grant", role)
	}
}

// TestExpiredValidity shows that the window is enforced by PostgreSQL
// itself: a role whose VALID UNTIL has passed cannot log in with the right
// password, and the same grant with a future window can.
func TestExpiredValidity(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	b := newBroker(t)
	g := newGrant(t, "expired", "pg_read_all_data")
	g.NotAfter = time.Now().Add(-time.Minute).Truncate(time.Second)

	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if _, err := connectAs(t, iss.Credential["dsn"]); pgCode(err) != "28P01" {
		t.Fatalf("connect after VALID UNTIL: %v, want PostgreSQL to refuse (28P01)", err)
	}

	g.NotAfter = time.Now().Add(time.Minute).Truncate(time.Second)
	iss, err = b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if _, err := connectAs(t, iss.Credential["dsn"]); err != nil {
		t.Fatalf("connect within the window: %v", err)
	}
}

func TestConcurrentGrantRevoke(t *testing.T) {
	needDB(t)
	t.Parallel()
	const pairs = 200
	ctx := context.Background()
	// The CI machine is shared and often loaded; this test is about what
	// is left behind, not latency, so one call may take up to a minute.
	b := newBrokerConfig(t, Config{DSNEnv: "TEST_ADMIN_DSN", Timeout: time.Minute})
	prefix := "acc-" + runID + "-conc"
	t.Cleanup(func() {
		rows, err := admin(t).Query(context.Background(), "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", likePrefix(prefix))
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		left, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, role := range left {
			dropRole(t, role)
		}
	})

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, pairs)
	for i := range pairs {
		wg.Go(func() {
			g := broker.Grant{
				ID:       fmt.Sprintf("%s-%03d", prefix, i),
				Grants:   []string{"pg_read_all_data"},
				NotAfter: time.Now().Add(time.Hour),
			}
			iss, err := b.Grant(ctx, g)
			if err != nil {
				// As airlock would: revoke what a failed Grant may have made.
				errs[i] = errors.Join(fmt.Errorf("grant %s: %w", g.ID, err), b.Revoke(ctx, g, ""))
				return
			}
			if err := b.Revoke(ctx, g, iss.Handle); err != nil {
				errs[i] = fmt.Errorf("revoke %s: %w", g.ID, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := admin(t).QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", likePrefix(prefix)).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d roles left behind after %d grant+revoke pairs", left, pairs)
	}
	t.Logf("%d concurrent grant+revoke pairs in %v (MaxConns %d)", pairs, elapsed.Round(time.Millisecond), DefaultMaxConns)
}

// likePrefix is a LIKE pattern for the roles of grants whose IDs begin
// with idPrefix.
func likePrefix(idPrefix string) string {
	role, _ := RoleName(idPrefix)
	return strings.ReplaceAll(role, "_", `\_`) + "%"
}

// TestNonSuperuserAdmin runs a grant and its revocation with an admin that
// has CREATEROLE but is not a superuser, as production admins should be.
func TestNonSuperuserAdmin(t *testing.T) {
	needDB(t)
	t.Parallel()
	ctx := context.Background()
	adminRole := "airlocktest_" + runID + "_admin"
	conn := admin(t)
	if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{adminRole}.Sanitize()+" LOGIN CREATEROLE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropRole(t, adminRole) })
	table := ordersTable(t, "nonsuper")
	g := newGrant(t, "nonsuper", "pg_read_all_data")

	dsn := replaceUser(t, adminDSN, adminRole, "")
	b, err := New(Config{DSNEnv: "LIMITED_ADMIN_DSN"}, func(string) string { return dsn })
	if err != nil {
		t.Fatal(err)
	}
	iss, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatalf("Grant by a CREATEROLE admin: %v", err)
	}
	session, err := connectAs(t, iss.Credential["dsn"])
	if err != nil {
		t.Fatalf("connect with the issued dsn: %v", err)
	}
	if _, err := session.Exec(ctx, "SELECT count(*) FROM "+table); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	if err := b.Revoke(ctx, g, iss.Handle); err != nil {
		t.Fatalf("Revoke by a CREATEROLE admin: %v", err)
	}
	if r := lookupRole(t, iss.Handle); r.exists {
		t.Fatalf("role %s is still in pg_roles after Revoke", iss.Handle)
	}
	var alive int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", session.PgConn().PID()).Scan(&alive); err != nil || alive != 0 {
		t.Fatalf("the session's backend is still there (%d, %v)", alive, err)
	}
}

// BenchmarkGrantRevoke measures one grant and its revocation, one after
// the other, each on its own admin connection.
func BenchmarkGrantRevoke(b *testing.B) {
	if adminDSN == "" {
		b.Skip("AIRLOCK_TEST_POSTGRES is not set")
	}
	ctx := context.Background()
	br, err := New(Config{DSNEnv: "TEST_ADMIN_DSN"}, func(string) string { return adminDSN })
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		g := broker.Grant{
			ID:       fmt.Sprintf("acc-%s-bench-%d", runID, i),
			Grants:   []string{"pg_read_all_data"},
			NotAfter: time.Now().Add(time.Hour),
		}
		i++
		iss, err := br.Grant(ctx, g)
		if err != nil {
			b.Fatal(err)
		}
		if err := br.Revoke(ctx, g, iss.Handle); err != nil {
			b.Fatal(err)
		}
	}
}
