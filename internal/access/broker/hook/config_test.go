package hook_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/hook"
)

func TestExecConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, err string // err "" for valid
	}{
		{`{"grant": ["/usr/local/bin/grant", "--group", "prod"], "revoke": ["/usr/local/bin/revoke"]}`, ""},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": "1s"}`, ""},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": "5m"}`, ""},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": null}`, ""},
		{`{"grant": ["/g"], "revoke": ["/r"], "shell": "/bin/sh"}`, `exec: unknown field "shell"; the fields are grant, revoke, timeout`},
		{`{"Grant": ["/g"], "revoke": ["/r"]}`, `unknown field "Grant"`},
		{`{"revoke": ["/r"]}`, "exec.grant is required"},
		{`{"grant": ["/g"]}`, "exec.revoke is required"},
		{`{"grant": [], "revoke": ["/r"]}`, "exec.grant is required"},
		{`{"grant": "/g --all", "revoke": ["/r"]}`, "exec.grant must be a list of strings"},
		{`{"grant": ["grant-access"], "revoke": ["/r"]}`, `exec.grant[0] "grant-access" must be an absolute path`},
		{`{"grant": ["/g"], "revoke": ["./revoke"]}`, `exec.revoke[0] "./revoke" must be an absolute path`},
		{`{"grant": ["/g", "a\u0000b"], "revoke": ["/r"]}`, `exec.grant[1] contains a NUL byte`},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": "500ms"}`, `exec.timeout "500ms" must be a duration from 1s to 5m`},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": "6m"}`, `exec.timeout "6m" must be`},
		{`{"grant": ["/g"], "revoke": ["/r"], "timeout": 30}`, `exec.timeout must be a string`},
		{`[]`, "must be an object"},
		{`null`, "must be an object"},
		{``, "needs a configuration with grant, revoke, timeout"},
	} {
		_, err := hook.DecodeExecConfig(json.RawMessage(tc.in))
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.in, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
		}
		if verr := broker.Validate("exec", json.RawMessage(tc.in)); (verr == nil) != (err == nil) {
			t.Errorf("%s: broker.Validate says %v, DecodeExecConfig %v", tc.in, verr, err)
		}
	}
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, err string // err "" for valid
	}{
		{`{"url": "https://access.example.com/airlock", "tokenEnv": "HOOK_TOKEN", "timeout": "10s"}`, ""},
		{`{"urlEnv": "HOOK_URL"}`, ""},
		{`{"url": "http://127.0.0.1:8181/grant"}`, ""},
		{`{"url": "http://localhost:8181/grant"}`, ""},
		{`{"url": "http://[::1]:8181/grant"}`, ""},
		{`{"url": "http://access.example.com/airlock"}`, "webhook.url: the URL must use https (http only to localhost)"},
		{`{"url": "https://user:pw@access.example.com/"}`, "must not carry credentials"},
		{`{"url": "access.example.com/airlock"}`, "must be an absolute https URL"},
		{`{"url": "ftp://access.example.com/"}`, "must be an absolute https URL"},
		{`{}`, "must be an absolute https URL"},
		{`{"url": "https://a.example.com/", "urlEnv": "HOOK_URL"}`, "give url or urlEnv, not both"},
		{`{"urlEnv": "hook-url"}`, `webhook.urlEnv "hook-url" must be an environment variable name`},
		{`{"urlEnv": "HOOK_URL", "tokenEnv": "Bearer abc"}`, `webhook.tokenEnv "Bearer abc" must be an environment variable name`},
		{`{"urlEnv": "HOOK_URL", "token": "abc"}`, `webhook: unknown field "token"; the fields are url, urlEnv, tokenEnv, timeout`},
		{`{"urlEnv": "HOOK_URL", "timeout": "0s"}`, `webhook.timeout "0s" must be a duration from 1s to 5m`},
		{`{"urlEnv": "HOOK_URL", "timeout": "1h"}`, `webhook.timeout "1h" must be`},
		{`{"url": 443}`, "webhook.url must be a string"},
	} {
		_, err := hook.DecodeWebhookConfig(json.RawMessage(tc.in))
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.in, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
		}
		if verr := broker.Validate("webhook", json.RawMessage(tc.in)); (verr == nil) != (err == nil) {
			t.Errorf("%s: broker.Validate says %v, DecodeWebhookConfig %v", tc.in, verr, err)
		}
	}
}
