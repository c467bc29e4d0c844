package notify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/server"
)

func TestValidateSink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec notify.SinkSpec
		path string // "" when valid
	}{
		{"webhook", notify.SinkSpec{Type: "webhook", URL: "https://hooks.example.com/a", SecretEnv: "AIRLOCK_HOOK_SECRET"}, ""},
		{"slack with events", notify.SinkSpec{Type: "slack", URL: "http://localhost:9/x", Events: []string{"promotion.blocked"}}, ""},
		{"unknown type", notify.SinkSpec{Type: "email", URL: "https://a.example"}, "spec.type"},
		{"ftp url", notify.SinkSpec{Type: "webhook", URL: "ftp://a.example/x"}, "spec.url"},
		{"relative url", notify.SinkSpec{Type: "webhook", URL: "/hook"}, "spec.url"},
		{"credentials in url", notify.SinkSpec{Type: "webhook", URL: "https://u:p@a.example/x"}, "spec.url"},
		{"bad env name", notify.SinkSpec{Type: "webhook", URL: "https://a.example", SecretEnv: "not a name"}, "spec.secretEnv"},
		{"bad event", notify.SinkSpec{Type: "webhook", URL: "https://a.example", Events: []string{"Blocked!"}}, "spec.events[0]"},
		{"misspelt event", notify.SinkSpec{Type: "webhook", URL: "https://a.example", Events: []string{"promotion.blocked", "promotion.blockd"}}, "spec.events[1]"},
		{"url from the environment", notify.SinkSpec{Type: "slack", URLEnv: "AIRLOCK_SLACK_URL"}, ""},
		{"url and urlEnv", notify.SinkSpec{Type: "slack", URL: "https://a.example", URLEnv: "AIRLOCK_SLACK_URL"}, "spec.urlEnv"},
		{"bad urlEnv", notify.SinkSpec{Type: "slack", URLEnv: "no way"}, "spec.urlEnv"},
		{"no url at all", notify.SinkSpec{Type: "webhook"}, "spec.url"},
	} {
		err := notify.ValidateSink(tc.spec)
		var pe *resource.PathError
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.path != "" && (!errors.As(err, &pe) || pe.Path != tc.path):
			t.Errorf("%s: got %v, want an error at %s", tc.name, err, tc.path)
		}
	}
}

func TestSinkDecodesStrictly(t *testing.T) {
	t.Parallel()
	doc := "apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: ops}\nspec: {type: webhook, url: 'https://a.example', secret: hunter2}\n"
	if _, err := server.NewScheme().Decode("sink.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a secret in the spec must be refused, got %v", err)
	}
}
