package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/airlock-dev/airlock/internal/resource"
)

// SignalCount is one signal's override count: the verdicts that carried
// it, how many a person overrode against it, and their ratio.
type SignalCount struct {
	Signal     string  `json:"signal"`
	Verdicts   int     `json:"verdicts"`
	Overridden int     `json:"overridden"`
	Rate       float64 `json:"rate"`
}

// AcceptVerdict records the caller's agreement with a verdict as its
// judge made it, and returns the Verdict object.
func (c *Client) AcceptVerdict(ctx context.Context, name, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/verdicts/"+seg(name)+"/accept", map[string]string{"reason": reason})
}

// OverrideVerdict replaces a verdict's outcome with outcome (pass, fail or
// inconclusive) and returns the Verdict object.
func (c *Client) OverrideVerdict(ctx context.Context, name, outcome, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/verdicts/"+seg(name)+"/override", map[string]string{"reason": reason, "outcome": outcome})
}

// ListVerdicts returns the Verdict objects matching a label selector
// (empty: all).
func (c *Client) ListVerdicts(ctx context.Context, selector string) ([]*resource.Object, error) {
	l, err := c.List(ctx, "verdicts", selector)
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// VerdictOverrides returns the override counts per signal, for the
// verdicts of app and env when they are not empty.
func (c *Client) VerdictOverrides(ctx context.Context, app, env string) ([]SignalCount, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	if env != "" {
		q.Set("environment", env)
	}
	var out struct {
		Items []SignalCount `json:"items"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/verdicts/overrides", query: q}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}
