package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

// BenchmarkOFREPOne is one single-flag OFREP evaluation through the whole
// handler (authentication from the cache, rate limit, decode, evaluate,
// encode, metrics), without the network.
func BenchmarkOFREPOne(b *testing.B) {
	e := newEnv(b)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "bench", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"prod"}})
	if err != nil {
		b.Fatal(err)
	}
	d := server.NewDeps(e.store, nil, nil, nil)
	d.OFREPRate = 1e9 // the limit is not what is measured
	a := api.New(d)
	body := `{"context":{"targetingKey":"user-42","email":"someone@example.com"}}`
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "/ofrep/v1/evaluate/flags/new-checkout", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+issued.Token)
		req.Header.Set("X-Forwarded-For", "bench") // ignored
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
