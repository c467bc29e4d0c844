// Package pgtest gives tests an empty PostgreSQL database of their own on
// the server named by AIRLOCK_TEST_POSTGRES (.ci/start-postgres starts one).
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// FreshDatabase creates an empty database, drops it when tb ends, and
// returns its URL. Without AIRLOCK_TEST_POSTGRES the test is skipped,
// except under CI=true, where a missing server is a failure.
func FreshDatabase(tb testing.TB) string {
	tb.Helper()
	server := os.Getenv("AIRLOCK_TEST_POSTGRES")
	if server == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("AIRLOCK_TEST_POSTGRES is not set; run eval \"$(.ci/start-postgres)\" first")
		}
		tb.Skip("AIRLOCK_TEST_POSTGRES is not set; run eval \"$(.ci/start-postgres)\" to test against PostgreSQL")
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		tb.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "airlock_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
