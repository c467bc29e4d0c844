// Package rollouttest holds what tests of rollouts on a real runtime
// share: waiting for a rollout's phase, and counting which version
// answers through the router.
package rollouttest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
)

// Wait polls rollout name until it reaches phase and returns its status;
// it fails tb after within.
func Wait(tb testing.TB, st store.Reader, name string, phase rollout.Phase, within time.Duration) rollout.Status {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		o, err := st.Get(context.Background(), rollout.Kind, name)
		if err != nil {
			tb.Fatal(err)
		}
		_, s, _ := rollout.Decode(o)
		if s.Phase == phase {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("rollout %s is %s (%s), want %s", name, s.Phase, s.Message, phase)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Served sends n requests to http://listen/ and counts who answered: the
// version a demo service names ("version X"), a status code, or "error".
func Served(listen string, n int) map[string]int {
	out := map[string]int{}
	client := &http.Client{Timeout: 2 * time.Second}
	for range n {
		resp, err := client.Get("http://" + listen + "/")
		if err != nil {
			out["error"]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			out[fmt.Sprint(resp.StatusCode)]++
			continue
		}
		out[strings.TrimSpace(strings.TrimPrefix(string(b), "version "))]++
	}
	return out
}
