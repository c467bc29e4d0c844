package promotion_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

// policies the property test switches between.
var propertyPolicies = []map[string]int{
	{"tech-lead": 1, "sre": 1},
	{"sre": 2},
	{"tech-lead": 1},
	{"security": 1, "sre": 1},
	{"tech-lead": 1, "sre": 1, "business-owner": 1},
}

func pipelineDoc(require map[string]int) string {
	var parts []string
	for _, r := range slices.Sorted(func(yield func(string) bool) {
		for k := range require {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s: %d", r, require[r]))
	}
	return `apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages:
  - environment: dev
  - environment: prod
    gates:
    - {type: approvals, require: {` + strings.Join(parts, ", ") + `}}
`
}

// modelVote is a vote the service accepted, as the model keeps it.
type modelVote struct {
	who      string
	roles    []string
	decision approval.Decision
	at       time.Time
	rev      int64
}

// TestApprovalSequences runs random sequences of approvals, rejections,
// policy changes and passing time against a real store and checks the
// service against a model after every step: a vote is accepted exactly
// when the model says it may be given; the promotion succeeds exactly when
// distinct eligible people fill the current policy's slots with
// unexpired approvals under the current policy revision, never by the
// release's creator, a commit author or the requester; any counting
// rejection ends it; a finished promotion never changes; a refused vote
// changes nothing.
func TestApprovalSequences(t *testing.T) {
	roles := map[string][]string{
		"alice": {"tech-lead", "sre"}, "bob": {"sre"}, "carol": {"sre", "security"}, "dave": {"business-owner"},
		"frank": {"tech-lead"}, "erin": {"sre", "tech-lead"}, // erin authored the commit
		"ci": {"sre"}, "deployer": {"tech-lead"}, // ci created the release; deployer requests
	}
	people := slices.Sorted(func(yield func(string) bool) {
		for p := range roles {
			if !yield(p) {
				return
			}
		}
	})
	excluded := map[string]bool{"ci": true, "deployer": true, "erin": true}
	runs := 40
	if testing.Short() {
		runs = 10
	}
	for run := range runs {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(run), 16))
			ctx := context.Background()
			var docs []string
			for _, d := range strings.Split(approvalWorld, "---\n") {
				if !strings.Contains(d, "kind: Pipeline") {
					docs = append(docs, d)
				}
			}
			w := promotiontest.New(t, strings.Join(append(docs, pipelineDoc(propertyPolicies[0])), "---\n"))
			scheme := server.NewScheme()
			cat := catalog.New(w.Store, scheme)
			if _, err := cat.CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{
				App: "shop", Version: "2.0.0", Artifact: release.Artifact{Digest: promotiontest.Digest}, Commit: "9f2c1e7", Authors: []string{"erin"},
			}); err != nil {
				t.Fatal(err)
			}
			name := promotion.Name("shop-2.0.0", "prod")
			for _, to := range []string{"dev", "prod"} {
				if _, err := w.Promotions.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "2.0.0", To: to}); err != nil {
					t.Fatal(err)
				}
			}
			require := propertyPolicies[0]
			rev := func() int64 {
				o, err := w.Store.Get(ctx, "Pipeline", "default")
				if err != nil {
					t.Fatal(err)
				}
				return o.Metadata.Revision
			}
			var votes []modelVote
			final := promotion.Phase("")
			var log []string

			expect := func() promotion.Phase {
				if final != "" {
					return final
				}
				cur, now := rev(), w.Clock.Now()
				latest := map[string]modelVote{}
				for _, v := range votes {
					latest[v.who] = v // votes are in time order
				}
				var holders []approval.Holder
				for who, v := range latest {
					if v.rev != cur || now.Sub(v.at) > approval.MaxAge || excluded[who] {
						continue
					}
					var held []string
					for _, r := range v.roles {
						if require[r] > 0 {
							held = append(held, r)
						}
					}
					if len(held) == 0 {
						continue
					}
					if v.decision == approval.Reject {
						return promotion.Rejected
					}
					holders = append(holders, approval.Holder{Name: who, Roles: held})
				}
				if bruteForce(require, holders) {
					return promotion.Succeeded
				}
				return promotion.Pending
			}
			check := func(step string) {
				t.Helper()
				log = append(log, step)
				st := phase(t, w.Store, name)
				want := expect()
				if st.Phase != want {
					t.Fatalf("after %d steps the promotion is %s (%s), the model says %s; steps:\n  %s", len(log), st.Phase, st.Message, want, strings.Join(log, "\n  "))
				}
				if want == promotion.Succeeded || want == promotion.Rejected {
					final = want
				}
			}

			for range 30 {
				switch op := rng.IntN(10); {
				case op < 6: // a vote
					who := people[rng.IntN(len(people))]
					d := approval.Approve
					if rng.IntN(7) == 0 {
						d = approval.Reject
					}
					held := roles[who]
					var need []string
					for _, r := range held {
						if require[r] > 0 {
							need = append(need, r)
						}
					}
					cur := rev()
					dup := slices.ContainsFunc(votes, func(v modelVote) bool { return v.who == who && v.rev == cur })
					mayVote := final == "" && !excluded[who] && len(need) > 0 && !dup
					before, _ := w.Store.List(ctx, approval.Kind, nil)
					_, err := w.Promotions.Vote(ctx, store.Actor{Name: who}, promotion.Vote{Promotion: name, Decision: d, Reason: "property", Roles: held})
					after, _ := w.Store.List(ctx, approval.Kind, nil)
					var pe *promotion.PolicyError
					switch {
					case mayVote && err != nil:
						t.Fatalf("%s %s (roles %v, policy %v) was refused: %v; steps:\n  %s", who, d, held, require, err, strings.Join(log, "\n  "))
					case !mayVote && err == nil:
						t.Fatalf("%s %s (roles %v, policy %v, final %q, duplicate %v) was accepted; steps:\n  %s", who, d, held, require, final, dup, strings.Join(log, "\n  "))
					case !mayVote && !errors.As(err, &pe) && !errors.Is(err, store.ErrConflict):
						t.Fatalf("%s %s refused with an unexpected error: %v", who, d, err)
					case !mayVote && len(after) != len(before):
						t.Fatalf("a refused vote by %s left an approval record", who)
					}
					if mayVote {
						votes = append(votes, modelVote{who: who, roles: need, decision: d, at: w.Clock.Now(), rev: cur})
					}
					check(fmt.Sprintf("%s %s (accepted %v)", who, d, mayVote))
				case op < 8: // the policy changes
					require = propertyPolicies[rng.IntN(len(propertyPolicies))]
					objs, err := scheme.Decode("p.yaml", []byte(pipelineDoc(require)))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := cat.Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
						t.Fatal(err)
					}
					if _, err := w.Promotions.ReevaluateOpen(ctx, store.Actor{Name: "system:promotions"}); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("policy %v (revision %d)", require, rev()))
				default: // time passes
					d := time.Duration(rng.IntN(40)) * time.Hour
					w.Clock.Add(d)
					if _, err := w.Promotions.ReevaluateOpen(ctx, store.Actor{Name: "system:promotions"}); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("%s pass", d))
				}
			}
		})
	}
}

// bruteForce reports whether every slot of require can get its own holder.
func bruteForce(require map[string]int, holders []approval.Holder) bool {
	var slots []string
	for r, n := range require {
		for range n {
			slots = append(slots, r)
		}
	}
	used := make([]bool, len(holders))
	var fill func(i int) bool
	fill = func(i int) bool {
		if i == len(slots) {
			return true
		}
		for h := range holders {
			if !used[h] && slices.Contains(holders[h].Roles, slots[i]) {
				used[h] = true
				if fill(i + 1) {
					return true
				}
				used[h] = false
			}
		}
		return false
	}
	return fill(0)
}
