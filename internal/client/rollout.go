package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/airlock-dev/airlock/internal/resource"
)

// UploadArtifact sends a release's artifact bytes into the server's local
// runtime content store. Bytes whose digest differs from the release's are
// refused (400).
func (c *Client) UploadArtifact(ctx context.Context, release string, body io.Reader) error {
	return c.call(ctx, request{method: http.MethodPut, path: "/api/v1/releases/" + seg(release) + "/artifact", body: body, contentType: "application/octet-stream"}, nil)
}

// CurrentRollout returns the current rollout of app in env (an *APIError
// with status 404 when there is none).
func (c *Client) CurrentRollout(ctx context.Context, app, env string) (*resource.Object, error) {
	l, err := c.List(ctx, "rollouts", "app="+app+",environment="+env+",current=true")
	if err != nil {
		return nil, err
	}
	if len(l.Items) == 0 {
		return nil, &APIError{Status: http.StatusNotFound, Title: "Not found", Detail: "no rollout of " + app + " in " + env + " (a promotion into " + env + " starts one when the application runs there)"}
	}
	return l.Items[len(l.Items)-1], nil
}

// RolloutCommand pauses, resumes, promotes, aborts or rolls back the
// current rollout of app in env, and returns the rollout it acted on (for
// a rollback after the old version stopped, the new rollout restoring it).
func (c *Client) RolloutCommand(ctx context.Context, app, env, command, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/rollouts/"+seg(app)+"/"+seg(env)+"/"+seg(command), map[string]string{"reason": reason})
}

// StatusRow is what runs for one application in one environment.
type StatusRow struct {
	App         string         `json:"app"`
	Environment string         `json:"environment"`
	Rollout     string         `json:"rollout"`
	Phase       string         `json:"phase"`
	Serving     string         `json:"serving,omitempty"`
	Candidate   string         `json:"candidate,omitempty"`
	Weight      int            `json:"weight"`
	Address     string         `json:"address,omitempty"`
	Healthy     map[string]int `json:"healthy,omitempty"`
	Replicas    int            `json:"replicas"`
	Message     string         `json:"message,omitempty"`
}

// Status returns what runs where (for one application when app is set).
func (c *Client) Status(ctx context.Context, app string) ([]StatusRow, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	var out struct {
		Items []StatusRow `json:"items"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/status", query: q}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Rehearsal is what a rollback rehearsal found.
type Rehearsal struct {
	App         string   `json:"app"`
	Environment string   `json:"environment"`
	Version     string   `json:"version"`
	Previous    string   `json:"previous"`
	Passed      bool     `json:"passed"`
	Steps       []string `json:"steps"`
	RollbackMs  int64    `json:"rollbackMs"`
	RestoreMs   int64    `json:"restoreMs"`
}

// Rehearse rolls the release serving app in env back and forward again
// and returns what happened (recorded as rollback evidence on the release)
// and, when it failed, why.
func (c *Client) Rehearse(ctx context.Context, app, env, reason string) (*Rehearsal, string, error) {
	body, err := jsonBody(map[string]string{"reason": reason})
	if err != nil {
		return nil, "", err
	}
	var out struct {
		Rehearsal *Rehearsal `json:"rehearsal"`
		Error     string     `json:"error"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/rollouts/" + seg(app) + "/" + seg(env) + "/rehearsal", body: body, contentType: "application/json"}, &out); err != nil {
		return nil, "", err
	}
	return out.Rehearsal, out.Error, nil
}
