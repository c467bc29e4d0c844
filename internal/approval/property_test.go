package approval

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestJudgeProperties generates random votes and policies and checks Judge
// against a brute-force search: the policy is met exactly when some
// assignment of distinct, eligible approvers to the required role slots
// exists, never by the creator, a commit author or the requester, never by
// an expired vote, and any eligible rejection fails it. An emergency needs
// one emergency approver, whatever else the policy requires.
func TestJudgeProperties(t *testing.T) {
	t.Parallel()
	people := []string{"ci-bot", "deployer", "erin", "alice", "bob", "carol", "dave"}
	roles := []string{"tech-lead", "sre", "security", "business-owner", EmergencyRole}
	rng := rand.New(rand.NewPCG(4, 72))
	for i := range 3000 {
		require := map[string]int{}
		for _, r := range roles {
			if rng.IntN(2) == 0 {
				require[r] = 1 + rng.IntN(2)
			}
		}
		if len(require) == 0 {
			require["sre"] = 1
		}
		in := input(rng.IntN(5) == 0)
		in.Release.Authors = []string{"erin"}
		pol := Policy{Require: require, MaxAge: []time.Duration{0, time.Hour, 30 * time.Minute, MaxAge}[rng.IntN(4)]}
		if in.Emergency {
			pol = pol.ForEmergency()
		}
		maxAge := pol.MaxAge
		if maxAge == 0 {
			maxAge = MaxAge
		}
		var votes []Approval
		for range rng.IntN(7) {
			a := vote(people[rng.IntN(len(people))], Approve)
			if rng.IntN(8) == 0 {
				a.Spec.Decision = Reject
			}
			for _, r := range roles {
				if rng.IntN(3) == 0 {
					a.Spec.Roles = append(a.Spec.Roles, r)
				}
			}
			switch rng.IntN(10) {
			case 0:
				a.Spec.PolicyRevision = 6
			case 1:
				a.CreatedAt = now.Add(-MaxAge - time.Second)
			case 2:
				a.CreatedAt = now.Add(-45 * time.Minute)
			}
			a.CreatedAt = a.CreatedAt.Add(time.Duration(rng.IntN(60)) * time.Second)
			votes = append(votes, a)
		}
		v := Judge(pol, in, votes)

		// The brute force: the latest vote per person, eligible ones only.
		latest := map[string]Approval{}
		for _, a := range votes {
			if p, ok := latest[a.Spec.Approver]; !ok || !a.CreatedAt.Before(p.CreatedAt) {
				latest[a.Spec.Approver] = a
			}
		}
		var held [][]string
		rejected := false
		for p, a := range latest {
			if p == in.Release.Creator || p == "erin" || p == in.RequestedBy || a.Spec.PolicyRevision != in.PolicyRevision || in.Now.Sub(a.CreatedAt) > maxAge {
				continue
			}
			var h []string
			for _, r := range a.Spec.Roles {
				if pol.Require[r] > 0 {
					h = append(h, r)
				}
			}
			if len(h) == 0 {
				continue
			}
			if a.Spec.Decision == Reject {
				rejected = true
				continue
			}
			held = append(held, h)
		}
		var slots []string
		for r, n := range pol.Require {
			for range n {
				slots = append(slots, r)
			}
		}
		met := assignable(slots, held, make([]bool, len(held)))
		if rejected != (len(v.Rejections) > 0) {
			t.Fatalf("case %d: rejected=%v, Judge %+v", i, rejected, v)
		}
		if met != (v.Missing == "") {
			t.Fatalf("case %d: require %v emergency %v votes %+v: brute force met=%v, Judge %+v", i, require, in.Emergency, votes, met, v)
		}
	}
}

// assignable reports whether each slot can get its own approver.
func assignable(slots []string, held [][]string, used []bool) bool {
	if len(slots) == 0 {
		return true
	}
	for i, h := range held {
		if used[i] || !slices.Contains(h, slots[0]) {
			continue
		}
		used[i] = true
		ok := assignable(slots[1:], held, used)
		used[i] = false
		if ok {
			return true
		}
	}
	return false
}
