// Package pgtest gives tests an empty PostgreSQL database of their own on
// the server named by AIRLOCK_TEST_POSTGRES (.ci/start-postgres starts one).
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
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
	url, drop, err := Create(server, "airlock_test_")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return url
}

// Create makes an empty database named prefix + a random suffix on the
// PostgreSQL server at server, and returns its URL and the function that
// drops it (the benches under bench/ use it directly).
func Create(server, prefix string) (string, func() error, error) {
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create test database: %w", err)
	}
	u, err := url.Parse(server)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() error {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop test database %s: %w", name, err)
		}
		return nil
	}, nil
}
