package client_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/client"
)

func TestPromotionRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obj := `{"apiVersion":"airlock.dev/v1","kind":"X","metadata":{"name":"x"},"spec":{}}`
	tests := []struct {
		name                       string
		call                       func(c *client.Client) error
		method, path, query, ctype string
		body                       string
	}{
		{
			name: "evidence",
			call: func(c *client.Client) error {
				_, err := c.AddEvidence(ctx, client.EvidenceRequest{App: "shop", Version: "1.4.0", Type: "tests", Suite: "e2e", Name: "api", Body: strings.NewReader("<testsuites/>")})
				return err
			},
			method: "POST", path: "/api/v1/evidence", query: "app=shop&name=api&suite=e2e&type=tests&version=1.4.0",
			ctype: "application/octet-stream", body: "<testsuites/>",
		},
		{
			name: "signoff",
			call: func(c *client.Client) error {
				_, err := c.AddSignoff(ctx, client.SignoffRequest{App: "shop", Version: "1.4.0", Kind: "uat", Role: "business-owner", Reason: "ok"})
				return err
			},
			method: "POST", path: "/api/v1/signoffs", query: "app=shop&version=1.4.0",
			ctype: "application/json", body: `{"kind":"uat","role":"business-owner","reason":"ok"}`,
		},
		{
			name: "list evidence uses the release name",
			call: func(c *client.Client) error {
				_, err := c.ListEvidence(ctx, "Shop", "1.4.0+build_7")
				return err
			},
			method: "GET", path: "/api/v1/evidence", query: "selector=release%3Dshop-1.4.0-build-7",
		},
		{
			name: "promote",
			call: func(c *client.Client) error {
				_, err := c.Promote(ctx, client.PromotionRequest{App: "shop", Version: "1.4.0", To: "prod", Emergency: &client.Emergency{Incident: "INC-1", Reason: "outage"}})
				return err
			},
			method: "POST", path: "/api/v1/promotions", ctype: "application/json",
			body: `{"app":"shop","version":"1.4.0","to":"prod","emergency":{"incident":"INC-1","reason":"outage"}}`,
		},
		{
			name: "promote without emergency",
			call: func(c *client.Client) error {
				_, err := c.Promote(ctx, client.PromotionRequest{App: "shop", Version: "1.4.0", To: "test"})
				return err
			},
			method: "POST", path: "/api/v1/promotions", ctype: "application/json",
			body: `{"app":"shop","version":"1.4.0","to":"test"}`,
		},
		{
			name: "get promotion",
			call: func(c *client.Client) error {
				_, err := c.Promotion(ctx, client.PromotionName("shop", "1.4.0", "test"))
				return err
			},
			method: "GET", path: "/api/v1/promotions/shop-1.4.0.to.test",
		},
		{
			name: "add key",
			call: func(c *client.Client) error {
				_, err := c.AddKey(ctx, client.KeyRequest{Name: "ci", PublicKey: "PEM", Identity: "github-actions"})
				return err
			},
			method: "POST", path: "/api/v1/keys", ctype: "application/json",
			body: `{"name":"ci","publicKey":"PEM","identity":"github-actions"}`,
		},
		{
			name:   "remove key",
			call:   func(c *client.Client) error { return c.RemoveKey(ctx, "ci", "rotated") },
			method: "DELETE", path: "/api/v1/keys/ci", query: "reason=rotated",
		},
		{
			name:   "reviews",
			call:   func(c *client.Client) error { _, err := c.ListReviews(ctx); return err },
			method: "GET", path: "/api/v1/reviews",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			respond := obj
			if tt.method == "GET" && !strings.Contains(tt.path, ".to.") {
				respond = `{"kind":"List","items":[]}`
			}
			c, rec := fake(t, http.StatusOK, "application/json", respond)
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if rec.Method != tt.method || rec.Path != tt.path || rec.Query != tt.query || rec.ContentType != tt.ctype || rec.Body != tt.body {
				t.Errorf("request = %s %s ?%s [%s] %s\nwant      %s %s ?%s [%s] %s", rec.Method, rec.Path, rec.Query, rec.ContentType, rec.Body, tt.method, tt.path, tt.query, tt.ctype, tt.body)
			}
		})
	}
}

func TestDecodePromotion(t *testing.T) {
	t.Parallel()
	c, _ := fake(t, http.StatusCreated, "application/json", `{"apiVersion":"airlock.dev/v1","kind":"Promotion","metadata":{"name":"shop-1.4.0.to.test"},
		"spec":{"app":"shop","version":"1.4.0","to":"test","from":"dev"},
		"status":{"phase":"Blocked","message":"1 gate failed","gates":[{"gate":"coverage","type":"coverage","status":"fail","reasons":["71% < 80%"],"fix":"raise coverage"}]}}`)
	o, err := c.Promote(context.Background(), client.PromotionRequest{App: "shop", Version: "1.4.0", To: "test"})
	if err != nil {
		t.Fatal(err)
	}
	spec, st, err := client.DecodePromotion(o)
	if err != nil {
		t.Fatal(err)
	}
	if spec.From != "dev" || st.Phase != client.PhaseBlocked || len(st.Gates) != 1 || st.Gates[0].Fix != "raise coverage" || st.Gates[0].Reasons[0] != "71% < 80%" {
		t.Errorf("decoded %+v %+v", spec, st)
	}
}
