package hook_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/hook"
)

// script writes an executable /bin/sh script into dir and returns its
// path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func sampleGrant() broker.Grant {
	return broker.Grant{
		ID: "acc-20261127-001", Requester: "alice@example.com", Environment: "prod",
		Resource: "orders-vpn", Role: "readonly", Grants: []string{"vpn-prod", "orders-ro"},
		NotBefore: time.Date(2026, 11, 27, 21, 0, 0, 0, time.FixedZone("CET", 3600)),
		NotAfter:  time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC),
		PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0 alice",
	}
}

func newExec(t *testing.T, grant, revoke []string, timeout string) *hook.Exec {
	t.Helper()
	e, err := hook.NewExec(hook.ExecConfig{Grant: grant, Revoke: revoke, Timeout: timeout}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// readEnv parses the output of env(1), dropping what /bin/sh itself
// exports (PWD, SHLVL, _).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		switch k {
		case "PWD", "SHLVL", "_", "OLDPWD":
			continue
		}
		env[k] = v
	}
	return env
}

// Not parallel: it sets a canary in the process environment, which the
// command must not see.
func TestExecGrantGetsOnlyItsEnvironmentAndReturnsTheAnswer(t *testing.T) {
	t.Setenv("AIRLOCK_TEST_CANARY", "leaked")
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	grant := script(t, dir, "grant", `env > '`+envFile+`'
echo "granting $AIRLOCK_ACCESS_ID" >&2
printf '{"credential": {"username": "%s", "password": "pw-1"}, "handle": "vpn-user:%s"}\n' "$AIRLOCK_ACCESS_ID" "$AIRLOCK_ACCESS_ID"`)
	e := newExec(t, []string{grant}, []string{"/bin/true"}, "")

	iss, err := e.Grant(context.Background(), sampleGrant())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"username": "acc-20261127-001", "password": "pw-1"}; !maps.Equal(iss.Credential, want) || iss.Handle != "vpn-user:acc-20261127-001" {
		t.Fatalf("issued %v %q", iss.Credential, iss.Handle)
	}
	want := map[string]string{
		"PATH":                       hook.DefaultPath,
		"AIRLOCK_ACCESS_ID":          "acc-20261127-001",
		"AIRLOCK_ACCESS_REQUESTER":   "alice@example.com",
		"AIRLOCK_ACCESS_ENVIRONMENT": "prod",
		"AIRLOCK_ACCESS_RESOURCE":    "orders-vpn",
		"AIRLOCK_ACCESS_ROLE":        "readonly",
		"AIRLOCK_ACCESS_GRANTS":      "vpn-prod,orders-ro",
		"AIRLOCK_ACCESS_NOT_BEFORE":  "2026-11-27T20:00:00Z",
		"AIRLOCK_ACCESS_NOT_AFTER":   "2026-11-27T21:00:00Z",
		"AIRLOCK_ACCESS_PUBLIC_KEY":  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0 alice",
	}
	if got := readEnv(t, envFile); !maps.Equal(got, want) {
		t.Fatalf("the grant command's environment is\n%v\nwant exactly\n%v", got, want)
	}
}

func TestExecRevokeGetsTheHandleAndIgnoresStdout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	revoke := script(t, dir, "revoke", `env > '`+envFile+`'
echo 'not JSON, and ignored'`)
	e, err := hook.NewExec(hook.ExecConfig{Grant: []string{"/bin/false"}, Revoke: []string{revoke}}, func(k string) string {
		return map[string]string{"PATH": "/opt/tools/bin:/usr/bin:/bin", "HOME": "/root"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Revoke(context.Background(), sampleGrant(), "vpn-user:acc-20261127-001"); err != nil {
		t.Fatal(err)
	}
	env := readEnv(t, envFile)
	if env["AIRLOCK_ACCESS_HANDLE"] != "vpn-user:acc-20261127-001" || env["AIRLOCK_ACCESS_ID"] != "acc-20261127-001" || env["PATH"] != "/opt/tools/bin:/usr/bin:/bin" {
		t.Fatalf("the revoke command's environment: %v", env)
	}
	if _, ok := env["HOME"]; ok {
		t.Fatalf("HOME reached the revoke command: %v", env)
	}
}

func TestExecRevokeFailureQuotesStderr(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	revoke := script(t, dir, "revoke", `echo "user $AIRLOCK_ACCESS_HANDLE is locked" >&2; exit 4`)
	e := newExec(t, []string{"/bin/true"}, []string{revoke}, "")
	err := e.Revoke(context.Background(), sampleGrant(), "h-1")
	if err == nil || !strings.Contains(err.Error(), "exited with status 4") || !strings.Contains(err.Error(), `stderr ends: "user h-1 is locked"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestExecGrantFailuresNeverQuoteStdout: the grant prints a credential on
// stdout and then fails in each way; the error quotes stderr only.
func TestExecGrantFailuresNeverQuoteStdout(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Hunter2"
	printSecret := `printf '{"credential": {"password": "` + secret + `"}, "handle": "h"}\n'`
	for _, tc := range []struct {
		name, body, want string
		timeout          string // default 1s
	}{
		{"non-zero exit", printSecret + `; echo "quota exceeded" >&2; exit 3`, `exited with status 3; stderr ends: "quota exceeded"`, ""},
		{"killed by a signal", printSecret + `; echo "dying" >&2; kill -TERM $$`, `was killed by signal terminated; stderr ends: "dying"`, ""},
		{"timeout", printSecret + `; echo "waiting for the directory" >&2; sleep 30`, `did not finish within 1s and was killed; stderr ends: "waiting for the directory"`, ""},
		{"background child keeps stdout open", `sleep 30 &
` + printSecret, `exited, but something it started kept its output open`, "10s"},
		{"truncated JSON", `printf '{"credential": {"password": "` + secret + `"'; echo oops >&2`, `not valid JSON (at byte`, ""},
		{"unknown field", `printf '{"credential": {}, "` + secret + `": 1}'`, `a field other than "credential"`, ""},
		{"two answers", printSecret + `; ` + printSecret, `not valid JSON`, ""},
		{"too much output", `i=0; while [ $i -lt 3000 ]; do printf '{"credential": {"password": "` + secret + `"}}'; i=$((i+1)); done`, `printed more than 65536 bytes on stdout`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			grant := script(t, t.TempDir(), "grant", tc.body)
			e := newExec(t, []string{grant}, []string{"/bin/true"}, cmp.Or(tc.timeout, "1s"))
			_, err := e.Grant(context.Background(), sampleGrant())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "Hunter") {
				t.Fatalf("the error quotes stdout: %v", err)
			}
		})
	}
}

func TestExecQuotesOnlyTheEndOfStderr(t *testing.T) {
	t.Parallel()
	grant := script(t, t.TempDir(), "grant", `echo BEGIN >&2
i=0; while [ $i -lt 100 ]; do echo "line $i of a long complaint" >&2; i=$((i+1)); done
echo END >&2; exit 1`)
	e := newExec(t, []string{grant}, []string{"/bin/true"}, "")
	_, err := e.Grant(context.Background(), sampleGrant())
	if err == nil {
		t.Fatal("a failed grant succeeded")
	}
	msg := err.Error()
	_, quoted, ok := strings.Cut(msg, "stderr ends: ")
	if !ok || !strings.HasSuffix(msg, `END"`) || strings.Contains(msg, "BEGIN") {
		t.Fatalf("err = %v", err)
	}
	s, err := strconv.Unquote(quoted)
	if err != nil || len(s) > hook.MaxStderrQuote {
		t.Fatalf("quoted %d bytes (%v), want at most %d", len(s), err, hook.MaxStderrQuote)
	}
}

// TestExecTimeoutKillsTheProcessGroup: a child the command started is
// killed with it.
func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	grant := script(t, dir, "grant", `sleep 120 &
echo $! > '`+pidFile+`'
wait`)
	e := newExec(t, []string{grant}, []string{"/bin/true"}, "1s")
	_, err := e.Grant(context.Background(), sampleGrant())
	if err == nil || !strings.Contains(err.Error(), "did not finish within 1s") {
		t.Fatalf("err = %v", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(data))
	// The killed child is reaped by init in its own time: wait for it to
	// be gone or a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %s still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecCallerCancel(t *testing.T) {
	t.Parallel()
	grant := script(t, t.TempDir(), "grant", `sleep 30`)
	e := newExec(t, []string{grant}, []string{"/bin/true"}, "5m")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.Grant(ctx, sampleGrant())
	// The caller's deadline is not the broker's timeout.
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") || strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecRefusals(t *testing.T) {
	t.Parallel()
	e := newExec(t, []string{"/nonexistent/grant-access"}, []string{"/bin/true"}, "")
	if _, err := e.Grant(context.Background(), sampleGrant()); err == nil || !strings.Contains(err.Error(), "start /nonexistent/grant-access: no such file or directory") {
		t.Fatalf("missing program: %v", err)
	}
	g := sampleGrant()
	g.Grants = []string{"a,b"}
	if _, err := newExec(t, []string{"/bin/true"}, []string{"/bin/true"}, "").Grant(context.Background(), g); err == nil || !strings.Contains(err.Error(), `grant "a,b" contains a comma`) {
		t.Fatalf("comma in a grant: %v", err)
	}
	g = sampleGrant()
	g.Requester = "a\x00b"
	if err := newExec(t, []string{"/bin/true"}, []string{"/bin/true"}, "").Revoke(context.Background(), g, "h"); err == nil || !strings.Contains(err.Error(), "AIRLOCK_ACCESS_REQUESTER contains a NUL byte") {
		t.Fatalf("NUL in the requester: %v", err)
	}
}

// TestExecThroughTheRegistry builds an exec broker as the server does.
func TestExecThroughTheRegistry(t *testing.T) {
	t.Parallel()
	if !slices.Contains(broker.Types(), "exec") || !slices.Contains(broker.Types(), "webhook") {
		t.Fatalf("types %v lack exec or webhook", broker.Types())
	}
	dir := t.TempDir()
	grant := script(t, dir, "grant", `echo '{"credential": {"role": "'"$AIRLOCK_ACCESS_ROLE"'"}}'`)
	cfg, _ := json.Marshal(map[string]any{"grant": []string{grant, "--verbose"}, "revoke": []string{"/bin/true"}, "timeout": "5s"})
	if err := broker.Validate("exec", cfg); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New("exec", cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	iss, err := b.Grant(context.Background(), sampleGrant())
	if err != nil || iss.Credential["role"] != "readonly" || iss.Handle != "" {
		t.Fatalf("issued %+v, %v", iss, err)
	}
	if err := b.Revoke(context.Background(), sampleGrant(), ""); err != nil {
		t.Fatal(err)
	}
	if err := broker.Validate("exec", json.RawMessage(`{"grant": ["/bin/true"], "revoke": ["/bin/true"], "shell": true}`)); err == nil || !strings.Contains(err.Error(), `unknown field "shell"`) {
		t.Fatalf("unknown field: %v", err)
	}
}
