package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// incidentJSON is an Incident object created at created.
func incidentJSON(name, severity, state, summary, openedBy, created string) string {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "airlock.dev/v1", "kind": "Incident",
		"metadata": map[string]any{"name": name, "revision": 3, "createdAt": created},
		"spec":     map[string]any{"severity": severity, "summary": summary, "openedBy": openedBy},
		"status":   map[string]any{"state": state, "openedAt": created},
	})
	return string(b)
}

func TestIncidentOpenPrintsTheName(t *testing.T) {
	t.Parallel()
	inc := incidentJSON("inc-20261127-001", "sev2", "open", "checkout down", "alice", "2026-11-27T14:00:00Z")
	f, url := newFake(t, map[string]route{"POST /api/v1/incidents": {201, inc}})
	code, stdout, stderr := runCLI(t, url, "", "incident", "open", "--severity", "sev2", "--summary", "checkout down", "--reference", "PD-1")
	if code != 0 || stdout != "inc-20261127-001\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(f.last().Body), &body); err != nil {
		t.Fatal(err)
	}
	if body["severity"] != "sev2" || body["summary"] != "checkout down" || body["reference"] != "PD-1" || len(body) != 3 {
		t.Errorf("request body %v", body)
	}
	code, stdout, _ = runCLI(t, url, "", "inc", "open", "--severity", "sev2", "--summary", "x", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"kind": "Incident"`) {
		t.Errorf("-o json: exit %d, %s", code, stdout)
	}
}

func TestIncidentUsageErrors(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, map[string]route{})
	for _, argv := range [][]string{
		{"incident", "open", "--summary", "x"},
		{"incident", "open", "--severity", "sev1"},
		{"incident", "open", "--severity", "sev1", "--summary", "x", "-o", "table"},
		{"incident", "close", "inc-20261127-001"},
		{"incident", "close", "--resolution", "fixed"},
		{"incident", "list", "extra"},
	} {
		if code, _, stderr := runCLI(t, url, "", argv...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", argv, code, stderr)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("usage errors sent %d requests", n)
	}
}

func TestIncidentClose(t *testing.T) {
	t.Parallel()
	closed := incidentJSON("inc-20261127-001", "sev2", "closed", "checkout down", "alice", "2026-11-27T14:00:00Z")
	f, url := newFake(t, map[string]route{
		"POST /api/v1/incidents/inc-20261127-001/close": {200, closed},
		"POST /api/v1/incidents/inc-20261127-002/close": problem(409, "incident inc-20261127-002 was already closed by bob at 2026-11-27T14:30:00Z: conflict"),
	})
	code, stdout, stderr := runCLI(t, url, "", "incident", "close", "inc-20261127-001", "--resolution", "rolled back")
	if code != 0 || stdout != "incident/inc-20261127-001 closed\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := f.last().Body; got != `{"resolution":"rolled back"}` {
		t.Errorf("request body %s", got)
	}
	code, _, stderr = runCLI(t, url, "", "incident", "close", "inc-20261127-002", "--resolution", "again")
	if code == 0 || !strings.Contains(stderr, "already closed by bob") {
		t.Errorf("closing twice: exit %d, stderr %q", code, stderr)
	}
}

func TestIncidentList(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 30)
	_, url := newFake(t, map[string]route{"GET /api/v1/incidents": {200, fmt.Sprintf(`{"apiVersion":"airlock.dev/v1","kind":"List","items":[%s,%s]}`,
		incidentJSON("inc-20261127-001", "sev1", "closed", "payments down", "alice", "2026-11-27T12:00:00Z"),
		incidentJSON("inc-20261127-002", "sev3", "open", long, "bob", "2026-11-27T14:55:00Z"))}})
	code, stdout, stderr := runCLI(t, url, "", "incident", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`(?m)^NAME\s+SEVERITY\s+STATE\s+SUMMARY\s+OPENED-BY\s+AGE$`,
		`(?m)^inc-20261127-001\s+sev1\s+closed\s+payments down\s+alice\s+3h$`,
		`(?m)^inc-20261127-002\s+sev3\s+open\s+(word ){11}word…\s+bob\s+5m$`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("table does not match %s:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, url, "", "incident", "list", "-o", "name")
	if code != 0 || stdout != "incident/inc-20261127-001\nincident/inc-20261127-002\n" {
		t.Errorf("-o name: exit %d, %q", code, stdout)
	}
}

func TestIncidentListEmpty(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, map[string]route{"GET /api/v1/incidents": {200, `{"apiVersion":"airlock.dev/v1","kind":"List","items":[]}`}})
	code, stdout, stderr := runCLI(t, url, "", "incident", "list")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "No resources found") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
