package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// StaleFlag is one reason to remove one flag, as GET /api/v1/flags/stale
// reports it: Kind "uniform" (one variant for everyone past the flag's
// lifetime) or "unused" (not evaluated for 30 days).
type StaleFlag struct {
	Name           string    `json:"name"`
	App            string    `json:"app"`
	Environment    string    `json:"environment"`
	Key            string    `json:"key"`
	Kind           string    `json:"kind"`
	Since          time.Time `json:"since"`
	Days           int       `json:"days"`
	SinceEstimated bool      `json:"sinceEstimated,omitempty"`
	LimitDays      int       `json:"limitDays"`
	Variant        string    `json:"variant,omitempty"`
	Value          any       `json:"value,omitempty"`
	Reason         string    `json:"reason"`
	Suggestion     string    `json:"suggestion"`
}

// StaleFlags is the answer of StaleFlags: the findings at Now, the
// server's clock.
type StaleFlags struct {
	Items []StaleFlag `json:"items"`
	Now   time.Time   `json:"now"`
}

// StaleFlags lists the stale flags, sorted by application, key and
// environment; env and app, when not empty, keep those of one
// environment or application.
func (c *Client) StaleFlags(ctx context.Context, env, app string) (*StaleFlags, error) {
	q := url.Values{}
	if env != "" {
		q.Set("environment", env)
	}
	if app != "" {
		q.Set("app", app)
	}
	var out StaleFlags
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/flags/stale", query: q}, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []StaleFlag{}
	}
	return &out, nil
}
