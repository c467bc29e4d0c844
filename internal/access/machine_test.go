package access

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// sim is one request driven by a random sequence of events through the
// state machine, with a model broker and a reconciler that runs at most a
// second after anything falls due while airlock is up.
type sim struct {
	r    *rand.Rand
	spec RequestSpec
	st   Status
	now  time.Time
	up   bool

	// The broker's view: whether a credential it issued is live.
	live                  bool
	liveUntil             time.Time // the window the broker issued it for
	failGrant, failRevoke bool
	revokeHealthy         time.Time // since when revocations succeed

	log []entry
}

// entry is one logged event, formatted only when a sequence fails.
type entry struct {
	at     time.Time
	format string
	args   []any
}

func (s *sim) logf(format string, a ...any) {
	s.log = append(s.log, entry{s.now, format, a})
}

// act performs what Due asks, as Service.Process does.
func (s *sim) act() {
	switch Due(s.spec, s.st, s.now) {
	case ExpirePending:
		s.st = expirePending(s.st, s.now)
		s.logf("expire pending")
	case ExpireUnused:
		s.st = expireUnused(s.st, s.now)
		s.logf("expire unused")
	case Issue:
		if s.failGrant {
			s.st = issueFailed(s.st, errors.New("broker down"), s.now)
			s.logf("issue failed")
			return
		}
		s.live, s.liveUntil = true, *s.st.NotAfter
		s.st = issued(s.st, "h", "sealed", s.now)
		s.logf("issued, state %s", s.st.State)
	case Revoke:
		if s.failRevoke {
			s.st = revokeFailed(s.st, errors.New("broker down"), s.now)
			s.logf("revoke failed")
			return
		}
		s.live = false
		s.st = revokedOK(s.st, s.now)
		s.logf("revoked, state %s", s.st.State)
	}
}

// advance moves time to target, running the reconciler while up.
func (s *sim) advance(target time.Time) {
	for s.up {
		w := NextWake(s.spec, s.st)
		if w.IsZero() || w.After(target) {
			break
		}
		// The loop runs every second: it acts within a second of w.
		at := w.Truncate(time.Second).Add(time.Second)
		if at.Before(s.now) {
			at = s.now
		}
		if at.After(target) {
			break
		}
		s.now = at
		before := s.st
		s.act()
		if Due(s.spec, s.st, s.now) != Nothing && s.st.State == before.State && s.st.RevokeAttempts == before.RevokeAttempts && s.st.GrantAttempts == before.GrantAttempts {
			panic("the reconciler made no progress")
		}
	}
	s.now = target
}

var people = []struct {
	name  string
	roles []string
}{
	{"req", []string{"sre", "tech-lead"}}, // the requester holds every role
	{"ana", []string{"sre"}},
	{"bo", []string{"tech-lead"}},
	{"cy", []string{"sre", "tech-lead"}},
	{"dev", []string{"deployer"}},
}

func (s *sim) check(t *testing.T) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("%s\nsequence:\n%s", fmt.Sprintf(format, a...), joinLines(s.log))
	}
	for _, v := range s.st.Votes {
		if v.Approver == s.spec.Requester {
			fail("the requester's own vote was recorded: %+v", v)
		}
	}
	if s.st.State == Approved || s.st.State == Active || s.st.GrantedAt != nil {
		approvers := map[string]bool{}
		for _, v := range s.st.Votes {
			if v.Decision == Approve {
				approvers[v.Approver] = true
			}
		}
		need := 0
		for _, n := range s.spec.Require {
			need += n
		}
		if len(approvers) < need || (s.spec.HighRisk && len(approvers) < 2) {
			fail("%s with %d approvers; the policy needs %d (high risk %v)", s.st.State, len(approvers), need, s.spec.HighRisk)
		}
	}
	// While airlock is up and the broker answers, no credential outlives
	// its window by more than 5 s; after the broker was down, the retry
	// comes within the longest backoff (30 s) and a loop tick.
	deadline := s.liveUntil.Add(5 * time.Second)
	if d := s.revokeHealthy.Add(31 * time.Second); d.After(deadline) {
		deadline = d
	}
	if s.up && !s.failRevoke && s.live && s.now.After(deadline) {
		fail("a credential is live at %s, its window ended at %s", s.now.Format(time.RFC3339), s.liveUntil.Format(time.RFC3339))
	}
	if s.st.State == Active && (s.st.NotAfter == nil || !s.live) {
		fail("active without a live credential: %+v", s.st)
	}
}

func joinLines(l []entry) string {
	out := ""
	for _, e := range l {
		out += "  " + e.at.Format("15:04:05") + " " + fmt.Sprintf(e.format, e.args...) + "\n"
	}
	return out
}

// TestStateMachineProperties drives random sequences of requests, votes,
// expiries, revocations, broker failures and restarts: no credential
// outlives its window by 5 s while airlock is up, the requester never
// approves their own request, and dual approval always holds.
// ACCESS_SEQUENCES sets the count (default 100,000).
func TestStateMachineProperties(t *testing.T) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ACCESS_SEQUENCES")); err == nil {
		n = v
	}
	if testing.Short() {
		n = 5_000
	}
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		s := &sim{r: r, now: start, up: true}
		highRisk := r.IntN(2) == 0
		s.spec = RequestSpec{Requester: "req", Environment: "prod", Resource: "db", Role: "rw",
			Duration: (time.Duration(1+r.IntN(240)) * time.Minute).String(), Require: map[string]int{"sre": 1},
			PendingUntil: start.Add(time.Hour)}
		if highRisk {
			s.spec.HighRisk, s.spec.Require = true, map[string]int{"sre": 1, "tech-lead": 1}
		}
		s.st = Status{State: Pending}
		for range 4 + r.IntN(20) {
			switch k := r.IntN(10); {
			case k < 4: // a vote
				p := people[r.IntN(len(people))]
				d := Approve
				if r.IntN(8) == 0 {
					d = Deny
				}
				if next, err := castVote(s.spec, s.st, p.name, p.roles, d, "because", s.now); err == nil {
					s.st = next
					s.logf("%s %s → %s", p.name, d, s.st.State)
					if s.up {
						s.act() // Vote processes at once
					}
				} else {
					var pe *PolicyError
					if !errors.As(err, &pe) {
						t.Fatalf("vote error of the wrong type: %v", err)
					}
				}
			case k < 7: // time passes
				s.advance(s.now.Add(time.Duration(r.Int64N(int64(3 * time.Hour)))))
			case k == 7: // someone revokes
				if next, err := requestRevoke(s.st, "cy", "done", s.now); err == nil {
					s.st = next
					s.logf("revoke requested")
					if s.up {
						s.act()
					}
				}
			case k == 8: // the broker fails or recovers
				wasFailing := s.failRevoke
				s.failGrant, s.failRevoke = r.IntN(3) == 0, r.IntN(4) == 0
				if wasFailing && !s.failRevoke {
					s.revokeHealthy = s.now
				}
				s.logf("broker: grant fails %v, revoke fails %v", s.failGrant, s.failRevoke)
			default: // a crash, a while down, a restart that reconciles first
				s.up = false
				s.advance(s.now.Add(time.Duration(r.Int64N(int64(2 * time.Hour)))))
				s.up = true
				s.logf("restart")
				for Due(s.spec, s.st, s.now) != Nothing {
					before := s.st
					s.act()
					if s.st.State == before.State && (s.failGrant || s.failRevoke) {
						break
					}
				}
			}
			s.check(t)
		}
		// A healthy broker and time: everything ends, nothing stays live.
		if s.failRevoke {
			s.revokeHealthy = s.now
		}
		s.up, s.failGrant, s.failRevoke = true, false, false
		s.advance(s.now.Add(400 * time.Hour))
		s.check(t)
		if s.live || !s.st.State.Final() || s.st.RevokePending {
			t.Fatalf("sequence %d ends %s, live %v, revoke pending %v\n%s", i, s.st.State, s.live, s.st.RevokePending, joinLines(s.log))
		}
	}
	t.Logf("%d sequences", n)
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}
