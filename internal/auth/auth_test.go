package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	t.Parallel()
	tok, hash, err := NewSecret("ci-bot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "alk_ci-bot_") || len(tok) < 60 {
		t.Fatalf("token %q does not look like alk_<name>_<secret>", tok)
	}
	if hash != HashSecret(tok) || strings.Contains(hash, tok) {
		t.Fatalf("hash %q is not the sha256 of the token", hash)
	}
	tok2, _, _ := NewSecret("ci-bot")
	if tok == tok2 {
		t.Fatal("two tokens are equal")
	}
	for _, tc := range []struct {
		in   string
		name string
		ok   bool
	}{
		{tok, "ci-bot", true},
		{"alk_admin_abc", "admin", true},
		{"alk__abc", "", false},
		{"alk_admin_", "", false},
		{"admin_abc", "", false},
		{"", "", false},
	} {
		name, ok := ParseToken(tc.in)
		if name != tc.name || ok != tc.ok {
			t.Errorf("ParseToken(%q) = %q, %v; want %q, %v", tc.in, name, ok, tc.name, tc.ok)
		}
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	p := func(grants ...Grant) *Principal { return &Principal{Name: "someone", Grants: grants} }
	g := func(envs []string, roles ...Role) Grant { return Grant{Roles: roles, Environments: envs} }
	tests := []struct {
		name   string
		p      *Principal
		action Action
		env    string
		allow  bool
	}{
		{"admin writes config", p(g(nil, Admin)), WriteConfig, "prod", true},
		{"admin writes a pipeline", p(g(nil, Admin)), WriteConfig, "", true},
		{"deployer cannot write config", p(g(nil, Deployer)), WriteConfig, "dev", false},
		{"ci creates releases", p(g(nil, CI)), CreateRelease, "", true},
		{"ci scoped to dev still creates releases", p(g([]string{"dev"}, CI)), CreateRelease, "", true},
		{"ci cannot delete releases", p(g(nil, CI)), DeleteRelease, "", false},
		{"auditor reads audit", p(g(nil, Auditor)), ReadAudit, "", true},
		{"sre cannot read audit", p(g(nil, SRE)), ReadAudit, "", false},
		{"auditor cannot manage tokens", p(g(nil, Auditor)), ManageTokens, "", false},
		{"scoped admin writes its environment", p(g([]string{"dev"}, Admin)), WriteConfig, "dev", true},
		{"scoped admin cannot write another environment", p(g([]string{"dev"}, Admin)), WriteConfig, "prod", false},
		{"scoped admin cannot write environment-less config", p(g([]string{"dev"}, Admin)), WriteConfig, "", false},
		{"scoped admin cannot manage tokens", p(g([]string{"dev"}, Admin)), ManageTokens, "", false},
		{"second grant adds a role", p(g(nil, SRE), g(nil, Auditor)), ReadAudit, "", true},
		{"every role reads resources", p(g(nil, BusinessOwner)), ReadResources, "", true},
		{"no grants, no access", p(), ReadResources, "", false},
		{"unknown action is refused", p(g(nil, Admin)), Action("nuke"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Authorize(tc.p, tc.action, tc.env)
			if (err == nil) != tc.allow {
				t.Fatalf("Authorize = %v, want allow=%v", err, tc.allow)
			}
			var fe *ForbiddenError
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("error %v is not a ForbiddenError", err)
			}
		})
	}
}

func TestForbiddenMessageNamesRoles(t *testing.T) {
	t.Parallel()
	err := Authorize(&Principal{Name: "ci-bot", Grants: []Grant{{Roles: []Role{CI}}}}, ManageTokens, "")
	if err == nil || !strings.Contains(err.Error(), "ci-bot may not tokens.manage") || !strings.Contains(err.Error(), "admin") || !strings.Contains(err.Error(), "roles ci") {
		t.Fatalf("message %q should name the identity, the action, the needed and the held roles", err)
	}
}

func TestEveryActionHasRoles(t *testing.T) {
	t.Parallel()
	for _, a := range Actions() {
		if len(AllowedRoles(a)) == 0 {
			t.Errorf("action %s allows no role", a)
		}
		if !containsRole(AllowedRoles(a), Admin) {
			t.Errorf("action %s is not allowed to admin", a)
		}
	}
}
