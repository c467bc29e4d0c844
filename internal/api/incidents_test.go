package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/resource"
)

func TestIncidentOpenCloseOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sre := e.tokens[auth.SRE]

	code, body := e.do("POST", "/api/v1/incidents", sre, "application/json", `{"severity":"sev2","summary":"checkout returns 500","reference":"PD-1"}`)
	if code != 201 {
		t.Fatalf("open: %d %s", code, body)
	}
	var obj resource.Object
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	var spec incident.Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(obj.Metadata.Name, "inc-") || spec.OpenedBy != "as-sre" || spec.Severity != incident.Sev2 {
		t.Errorf("opened %s with spec %+v; want an inc- name opened by as-sre", obj.Metadata.Name, spec)
	}

	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		detail                          string
	}{
		{"openedBy is not the caller's to set", "POST", "/api/v1/incidents", sre, `{"severity":"sev2","summary":"x","openedBy":"mallory"}`, 400, "openedBy"},
		{"bad severity", "POST", "/api/v1/incidents", sre, `{"severity":"p1","summary":"x"}`, 400, "sev1, sev2"},
		{"ci may not open", "POST", "/api/v1/incidents", e.tokens[auth.CI], `{"severity":"sev2","summary":"x"}`, 403, "incidents.manage"},
		{"no resolution", "POST", "/api/v1/incidents/" + obj.Metadata.Name + "/close", sre, `{"resolution":""}`, 400, "--resolution"},
		{"unknown incident", "POST", "/api/v1/incidents/inc-20000101-001/close", sre, `{"resolution":"x"}`, 404, ""},
		{"close", "POST", "/api/v1/incidents/" + obj.Metadata.Name + "/close", e.tokens[auth.TechLead], `{"resolution":"rolled back"}`, 200, "as-tech-lead"},
		{"close twice", "POST", "/api/v1/incidents/" + obj.Metadata.Name + "/close", sre, `{"resolution":"again"}`, 409, "already closed"},
		{"no generic create", "POST", "/api/v1/inc", e.admin, `{}`, 400, "airlock incident open"},
		{"kept for the audit trail", "DELETE", "/api/v1/incidents/" + obj.Metadata.Name, e.admin, "", 400, "cannot be deleted"},
		{"listed", "GET", "/api/v1/incidents?selector=state%3Dclosed", e.tokens[auth.Auditor], "", 200, obj.Metadata.Name},
	} {
		code, body := e.do(tc.method, tc.path, tc.token, "application/json", tc.body)
		if code != tc.want || !strings.Contains(string(body), tc.detail) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tc.name, code, body, tc.want, tc.detail)
		}
	}
}

// An incident belongs to no environment, so a role bound to some
// environments may still open one; a role without incidents.manage may not.
func TestIncidentOpenWithAScopedGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seed()
	for _, tc := range []struct {
		role string
		want int
	}{{"sre", 201}, {"business-owner", 403}} {
		code, body := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"prod-`+tc.role+`","roles":["`+tc.role+`"],"environments":["prod"]}`)
		if code != 201 {
			t.Fatalf("token: %d %s", code, body)
		}
		var issued auth.Issued
		if err := json.Unmarshal(body, &issued); err != nil {
			t.Fatal(err)
		}
		code, body = e.do("POST", "/api/v1/incidents", issued.Token, "application/json", `{"severity":"sev1","summary":"prod down"}`)
		if code != tc.want {
			t.Errorf("%s bound to prod: %d %s, want %d", tc.role, code, body, tc.want)
		}
	}
}
