package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  string
		wantErr string // "" when valid
	}{
		{"minimal", `{"dsnEnv": "ORDERS_DB_ADMIN_DSN"}`, ""},
		{"full", `{"dsnEnv": "ORDERS_DB_ADMIN_DSN", "connectHost": "orders-db.internal:5432", "database": "orders"}`, ""},
		{"ipv6 connect host", `{"dsnEnv": "X", "connectHost": "[::1]:5432"}`, ""},
		{"unknown field", `{"dsnEnv": "X", "dsn": "postgres://u:p@h/db"}`, `unknown field "dsn"`},
		{"missing dsnEnv", `{"database": "orders"}`, "dsnEnv is required"},
		{"dsn in dsnEnv", `{"dsnEnv": "postgres://u@h/db"}`, "is not an environment variable name"},
		{"connect host without port", `{"dsnEnv": "X", "connectHost": "orders-db"}`, "is not host:port"},
		{"connect host bad port", `{"dsnEnv": "X", "connectHost": "orders-db:99999"}`, "no valid port"},
		{"database with slash", `{"dsnEnv": "X", "database": "a/b"}`, "cannot carry"},
		{"empty", ``, "configuration is empty"},
		{"trailing data", `{"dsnEnv": "X"} {}`, "unexpected data"},
		{"not an object", `["X"]`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := broker.Validate(Type, json.RawMessage(tt.config))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	if !slices.Contains(broker.Types(), Type) {
		t.Fatalf("broker types %v lack %q", broker.Types(), Type)
	}
	env := func(name string) string {
		if name == "ORDERS_DB_ADMIN_DSN" {
			return "postgres://admin:pw@db.internal:5432/orders?sslmode=require"
		}
		return ""
	}
	b, err := broker.New(Type, json.RawMessage(`{"dsnEnv": "ORDERS_DB_ADMIN_DSN"}`), env)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if _, ok := b.(*Broker); !ok {
		t.Fatalf("broker.New returned %T, want *Broker", b)
	}
	_, err = broker.New(Type, json.RawMessage(`{"dsnEnv": "UNSET_VARIABLE"}`), env)
	if err == nil || !strings.Contains(err.Error(), "UNSET_VARIABLE") {
		t.Fatalf("broker.New with an unset variable: error %v, want one naming UNSET_VARIABLE", err)
	}
}

func TestRoleName(t *testing.T) {
	t.Parallel()
	long := "acc-" + strings.Repeat("x", 80)
	tests := []struct {
		id, want string
	}{
		{"acc-20261127-001", "airlock_acc_20261127_001"},
		{"ACC-Prod.Orders", "airlock_acc_prod_orders"},
		{"a b\"c'd;e", "airlock_a_b_c_d_e"},
		{"snow☃man", "airlock_snow_man"},
		{"under_score", "airlock_under_score"},
	}
	for _, tt := range tests {
		got, err := RoleName(tt.id)
		if err != nil || got != tt.want {
			t.Errorf("RoleName(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		}
	}
	a, _ := RoleName(long + "a")
	b, _ := RoleName(long + "b")
	if len(a) > 63 || len(b) > 63 || a == b || !strings.HasPrefix(a, RolePrefix) {
		t.Errorf("long IDs: RoleName = %q (%d bytes), %q (%d bytes); want distinct names of at most 63 bytes", a, len(a), b, len(b))
	}
	if again, _ := RoleName(long + "a"); again != a {
		t.Errorf("RoleName is not deterministic: %q then %q", a, again)
	}
	if _, err := RoleName(""); err == nil {
		t.Error("RoleName(\"\") succeeded, want an error")
	}
}

func TestQuoteLiteral(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"2026-11-27T21:00:00Z": "'2026-11-27T21:00:00Z'",
		"it's":                 "'it''s'",
		`a\b'c`:                ` E'a\\b''c'`,
	}
	for in, want := range tests {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSSLMode(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"postgres://u:p@h:5432/db?sslmode=verify-full":  "verify-full",
		"postgresql://u@h/db":                           "",
		"host=h user=u sslmode=require password='a b'":  "require",
		"host=h password='x sslmode=require' dbname=db": "",
	}
	for dsn, want := range tests {
		if got := sslMode(dsn); got != want {
			t.Errorf("sslMode(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestRedact checks that any message carrying an admin connection string
// or its password comes out without them, whatever the string's form.
func TestRedact(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r$ecret/Pw"
	tests := []struct {
		name, dsn, shown string
	}{
		{"url", "postgres://admin:Sup3r%24ecret%2FPw@db:5432/orders", "Sup3r%24ecret%2FPw"},
		{"url decoded", "postgres://admin:Sup3r%24ecret%2FPw@db:5432/orders", pw},
		{"malformed url", "postgres://admin:Sup3r$ecret/Pw@db:port/orders", pw},
		{"keyword", "host=db user=admin password='Sup3r$ecret/Pw' dbname=orders", pw},
		{"whole dsn", "host=db user=admin password=Sup3r$ecret/Pw", "host=db user=admin password=Sup3r$ecret/Pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := redact(fmt.Errorf("connect: %s failed", tt.shown), dsnSecrets(tt.dsn))
			if strings.Contains(err.Error(), "ecret") {
				t.Fatalf("redacted error %q still shows the password", err)
			}
			if !strings.Contains(err.Error(), "connect: ") {
				t.Fatalf("redacted error %q lost its message", err)
			}
		})
	}
	plain := errors.New("connection refused")
	if got := redact(plain, dsnSecrets("postgres://a:b1234@h/db")); got != plain {
		t.Errorf("redact changed an error without secrets: %v", got)
	}
}

// TestErrorsHideAdminPassword runs Grant and Revoke against admin
// connection strings that fail in different ways and checks that no error
// shows the password.
func TestErrorsHideAdminPassword(t *testing.T) {
	t.Parallel()
	const pw = "Adm1nPassw0rdNeverShown"
	dsns := map[string]string{
		"refused url":     "postgres://admin:" + pw + "@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2",
		"refused keyword": "host=127.0.0.1 port=1 user=admin password=" + pw + " sslmode=disable connect_timeout=2",
		"bad port":        "postgres://admin:" + pw + "@127.0.0.1:notaport/postgres",
		"bad keyword":     "host=127.0.0.1 password='" + pw + " sslmode=disable",
	}
	if adminDSN != "" {
		// A real server refusing an unknown user.
		dsns["unknown user"] = replaceUser(t, adminDSN, "airlocktest_nosuchuser_"+runID, pw)
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := func(string) string { return dsn }
			var errs []error
			b, err := New(Config{DSNEnv: "ADMIN_DSN", Timeout: 5 * time.Second}, env)
			errs = append(errs, err)
			if err == nil {
				g := broker.Grant{ID: "acc-redact-" + runID, Grants: []string{"pg_read_all_data"}, NotAfter: time.Now().Add(time.Hour)}
				_, err := b.Grant(context.Background(), g)
				errs = append(errs, err)
				errs = append(errs, b.Revoke(context.Background(), g, ""))
			}
			failed := false
			for _, err := range errs {
				if err == nil {
					continue
				}
				failed = true
				if strings.Contains(err.Error(), pw) || strings.Contains(fmt.Sprintf("%+v", err), pw) {
					t.Errorf("error shows the admin password: %v", err)
				}
			}
			if !failed {
				t.Fatal("nothing failed; the test proves nothing")
			}
		})
	}
}

// TestGrantRefusesBadInput checks the grants refused before any
// connection is made (the admin DSN points nowhere).
func TestGrantRefusesBadInput(t *testing.T) {
	t.Parallel()
	b, err := New(Config{DSNEnv: "X"}, func(string) string { return "postgres://admin@127.0.0.1:1/db" })
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name    string
		g       broker.Grant
		wantErr string
	}{
		{"no ID", broker.Grant{NotAfter: hour}, "no ID"},
		{"no end", broker.Grant{ID: "acc-1"}, "no end"},
		{"empty role", broker.Grant{ID: "acc-1", NotAfter: hour, Grants: []string{"pg_read_all_data", ""}}, "empty or invalid role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.Grant(context.Background(), tt.g)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Grant: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
