package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Approve records the caller's approval of a promotion, with a required
// reason, and returns the promotion as re-judged. Self-approval and an
// approval without a required role for the environment are 422s, a second
// vote a 409.
func (c *Client) Approve(ctx context.Context, promotion, reason string) (*resource.Object, error) {
	return c.vote(ctx, promotion, "approve", reason)
}

// Reject records the caller's rejection of a promotion, which blocks it.
func (c *Client) Reject(ctx context.Context, promotion, reason string) (*resource.Object, error) {
	return c.vote(ctx, promotion, "reject", reason)
}

func (c *Client) vote(ctx context.Context, promotion, decision, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/promotions/"+seg(promotion)+"/"+decision, map[string]string{"reason": reason})
}

// PendingApprovals lists the promotions waiting for approvals; with mine,
// only those the caller could approve.
func (c *Client) PendingApprovals(ctx context.Context, mine bool) ([]*resource.Object, error) {
	q := url.Values{}
	if mine {
		q.Set("mine", "true")
	}
	var l ObjectList
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/approvals/pending", query: q}, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}
