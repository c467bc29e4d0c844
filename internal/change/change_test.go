package change_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

var world = promotiontest.DevProd("- {type: changeRequest, require: {business-owner: 1}}")

const prod = "shop-1.4.0.to.prod"

// newWorld has shop 1.4.0 (created by "ci") in dev and its promotion to
// prod, requested by "deployer", waiting.
func newWorld(t *testing.T, extra string) (*promotiontest.World, *change.Service) {
	t.Helper()
	w := promotiontest.New(t, world+extra)
	for _, to := range []string{"dev", "prod"} {
		if _, err := w.Promotions.Request(context.Background(), store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	return w, change.New(w.Store, w.Promotions.Reevaluate)
}

func promo(t *testing.T, w *promotiontest.World) (promotion.Status, string) {
	t.Helper()
	obj, err := w.Store.Get(context.Background(), promotion.Kind, prod)
	if err != nil {
		t.Fatal(err)
	}
	var st promotion.Status
	if err := obj.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Gates {
		if g.Type == change.GateType {
			return st, string(g.Status) + ": " + strings.Join(g.Reasons, "; ")
		}
	}
	return st, "absent"
}

func create(t *testing.T, c *change.Service, who string, ext *change.External) string {
	t.Helper()
	obj, err := c.Create(context.Background(), store.Actor{Name: who}, change.CreateRequest{
		App: "shop", Version: "1.4.0", Environment: "prod", Summary: "new checkout flow", Risk: "Medium",
		RollbackPlan: "airlock rollback shop --env prod", External: ext,
	})
	if err != nil {
		t.Fatal(err)
	}
	return obj.Metadata.Name
}

func TestInternalChangeRequestGatesTheTransition(t *testing.T) {
	ctx := context.Background()
	w, c := newWorld(t, "")
	if st, g := promo(t, w); st.Phase != promotion.Pending || !strings.Contains(g, "pending: no change request for shop 1.4.0 into prod") {
		t.Fatalf("without a change request: %s %s", st.Phase, g)
	}
	name := create(t, c, "deployer", nil)
	if !strings.HasPrefix(name, "chg-20261127-") {
		t.Fatalf("name %s", name)
	}
	if _, g := promo(t, w); !strings.Contains(g, "change request "+name+" (medium risk) needs 1 business-owner approval") {
		t.Fatalf("with an open change request: %s", g)
	}

	before, _, _ := w.Store.Audit().Head(ctx)
	var pe *change.PolicyError
	for _, tc := range []struct{ who, role, want string }{
		{"deployer", "business-owner", "deployer raised change request"},
		{"ci", "business-owner", "ci created release shop-1.4.0"},
		{"bob", "sre", "bob holds none of the roles the change request needs (1 business-owner)"},
	} {
		_, err := c.Vote(ctx, store.Actor{Name: tc.who}, change.VoteRequest{Name: name, Decision: change.Approve, Reason: "ok", Roles: []string{tc.role}})
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s approving: %v, want %q", tc.who, err, tc.want)
		}
	}
	if _, err := c.Vote(ctx, store.Actor{Name: "olivia"}, change.VoteRequest{Name: name, Decision: change.Approve, Reason: " ", Roles: []string{"business-owner"}}); err == nil {
		t.Fatal("a vote without a reason was accepted")
	}
	var entries []audit.Entry
	w.Store.Audit().Entries(ctx, store.AuditFilter{After: before}, func(e audit.Entry) error { entries = append(entries, e); return nil })
	if len(entries) != 4 || entries[0].Action != "refused-approve" || entries[0].Kind != change.Kind {
		t.Fatalf("refused votes audited: %+v", entries)
	}
	if st, _ := promo(t, w); st.Phase != promotion.Pending {
		t.Fatalf("refused votes moved the promotion: %s", st.Phase)
	}

	obj, err := c.Vote(ctx, store.Actor{Name: "olivia"}, change.VoteRequest{Name: name, Decision: change.Approve, Reason: "business case agreed", Roles: []string{"business-owner", "sre"}})
	if err != nil {
		t.Fatal(err)
	}
	var cs change.Status
	obj.DecodeStatus(&cs)
	if cs.Phase != change.Approved || len(cs.Votes) != 1 || strings.Join(cs.Votes[0].Roles, ",") != "business-owner" {
		t.Fatalf("change request after its approval: %+v", cs)
	}
	if st, g := promo(t, w); st.Phase != promotion.Succeeded || !strings.Contains(g, "pass: change request "+name+" (medium risk) approved: business-owner olivia") {
		t.Fatalf("promotion after the approval: %s %s", st.Phase, g)
	}
	if _, err := c.Vote(ctx, store.Actor{Name: "olivia"}, change.VoteRequest{Name: name, Decision: change.Approve, Reason: "again", Roles: []string{"business-owner"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second vote: %v", err)
	}
}

func TestRejectedChangeRequestBlocksUntilANewOne(t *testing.T) {
	ctx := context.Background()
	w, c := newWorld(t, "")
	first := create(t, c, "deployer", nil)
	if _, err := c.Vote(ctx, store.Actor{Name: "olivia"}, change.VoteRequest{Name: first, Decision: change.Reject, Reason: "not during the sale", Roles: []string{"business-owner"}}); err != nil {
		t.Fatal(err)
	}
	st, g := promo(t, w)
	if st.Phase != promotion.Blocked || !strings.Contains(g, "fail: change request "+first+": rejected by olivia (business-owner): not during the sale") {
		t.Fatalf("after the rejection: %s %s", st.Phase, g)
	}
	if _, err := c.Vote(ctx, store.Actor{Name: "bo2"}, change.VoteRequest{Name: first, Decision: change.Approve, Reason: "ok", Roles: []string{"business-owner"}}); err == nil {
		t.Fatal("approving a rejected change request was accepted")
	}
	second := create(t, c, "deployer", nil)
	if st, _ := promo(t, w); st.Phase != promotion.Pending {
		t.Fatalf("with a new open request: %s", st.Phase)
	}
	if _, err := c.Close(ctx, store.Actor{Name: "deployer"}, second, "withdrawn: after the sale"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Close(ctx, store.Actor{Name: "deployer"}, second, "again"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("closing twice: %v", err)
	}
	if st, _ := promo(t, w); st.Phase != promotion.Blocked {
		t.Fatalf("with the new request closed: %s", st.Phase)
	}
}

func TestBadChangeRequestsChangeNothing(t *testing.T) {
	ctx := context.Background()
	w, c := newWorld(t, "")
	base := change.CreateRequest{App: "shop", Version: "1.4.0", Environment: "prod", Summary: "s", Risk: "low", RollbackPlan: "p"}
	var ie *change.InvalidError
	var pe *change.PolicyError
	for _, tc := range []struct {
		edit func(*change.CreateRequest)
		want string
	}{
		{func(r *change.CreateRequest) { r.Summary = " " }, "needs a summary"},
		{func(r *change.CreateRequest) { r.Risk = "extreme" }, `risk "extreme" is not one of low, medium, high`},
		{func(r *change.CreateRequest) { r.RollbackPlan = "" }, "needs its rollback plan"},
		{func(r *change.CreateRequest) { r.Summary = strings.Repeat("x", 501) }, "at most 500"},
		{func(r *change.CreateRequest) { r.External = &change.External{System: "snow", Key: "CHG 1"} }, `external key "CHG 1"`},
		{func(r *change.CreateRequest) { r.External = &change.External{System: "snow", Key: "../x"} }, "without spaces, '/'"},
		{func(r *change.CreateRequest) { r.External = &change.External{System: "snow", Key: "CHG1"} }, `change system "snow" is not declared`},
		{func(r *change.CreateRequest) { r.Version = "9.9.9" }, "release shop 9.9.9"},
	} {
		r := base
		tc.edit(&r)
		_, err := c.Create(ctx, store.Actor{Name: "deployer"}, r)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !(errors.As(err, &ie) || errors.As(err, &pe) || errors.Is(err, store.ErrNotFound)) {
			t.Errorf("%+v: %v, want %q", r, err, tc.want)
		}
	}
	if objs, _ := w.Store.List(ctx, change.Kind, nil); len(objs) != 0 {
		t.Fatalf("bad requests left %d change requests", len(objs))
	}
}

// itsm is a change system over real HTTP: it answers per key, and checks
// the bearer token.
type itsm struct {
	mu      sync.Mutex
	answers map[string]string // key → JSON body; absent → 404
	status  int               // when set, answer this instead
	calls   int
}

func (s *itsm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if s.status != 0 {
		http.Error(w, "down", s.status)
		return
	}
	body, ok := s.answers[strings.TrimPrefix(r.URL.Path, "/api/changes/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(body))
}

func (s *itsm) set(key, body string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[key], s.status = body, status
}

func TestExternalChangeRequestIsConfirmedOverHTTP(t *testing.T) {
	ctx := context.Background()
	sys := &itsm{answers: map[string]string{}}
	srv := httptest.NewServer(sys)
	defer srv.Close()
	w, c := newWorld(t, `---
apiVersion: airlock.dev/v1
kind: ChangeSystem
metadata: {name: servicenow}
spec: {urlEnv: SNOW_URL, tokenEnv: SNOW_TOKEN, timeout: 2s}
`)
	env := map[string]string{"SNOW_URL": srv.URL + "/api/changes/{key}", "SNOW_TOKEN": "s3cret"}
	c.SetConfirmer(&change.Confirmer{Client: srv.Client(), Getenv: func(k string) string { return env[k] }})
	name := create(t, c, "deployer", &change.External{System: "servicenow", Key: "CHG0012345"})
	if _, g := promo(t, w); !strings.Contains(g, "needs confirmation by servicenow of CHG0012345") {
		t.Fatalf("before any check: %s", g)
	}
	// Votes in airlock do not approve an external request.
	var pe *change.PolicyError
	if _, err := c.Vote(ctx, store.Actor{Name: "olivia"}, change.VoteRequest{Name: name, Decision: change.Approve, Reason: "ok", Roles: []string{"business-owner"}}); !errors.As(err, &pe) {
		t.Fatalf("voting on an external request: %v", err)
	}

	sys.set("CHG0012345", `{"approved": false, "state": "assess", "message": "CAB on Tuesday"}`, 0)
	if n, err := c.ConfirmOpen(ctx, store.Actor{Name: "system:changes"}); err != nil || n != 1 {
		t.Fatalf("confirm open: %d %v", n, err)
	}
	if st, g := promo(t, w); st.Phase != promotion.Pending || !strings.Contains(g, `approval of CHG0012345 in servicenow (state "assess")`) {
		t.Fatalf("while assessed: %s %s", st.Phase, g)
	}
	// The same answer again writes nothing.
	head, _, _ := w.Store.Audit().Head(ctx)
	if _, err := c.Confirm(ctx, store.Actor{Name: "system:changes"}, name); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := w.Store.Audit().Head(ctx); h != head {
		t.Fatalf("an unchanged answer was written (%d → %d)", head, h)
	}

	// The system fails: the error is recorded, the previous answer stands.
	sys.set("CHG0012345", `{"approved": false, "state": "assess", "message": "CAB on Tuesday"}`, http.StatusServiceUnavailable)
	_, err := c.Confirm(ctx, store.Actor{Name: "alice"}, name)
	var ce *change.ConfirmError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "change system servicenow answered 503") || strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("a failing system: %v", err)
	}
	obj, _ := w.Store.Get(ctx, change.Kind, name)
	var cs change.Status
	obj.DecodeStatus(&cs)
	if cs.Phase != change.Open || cs.External == nil || cs.External.State != "assess" || !strings.Contains(cs.External.Error, "503") {
		t.Fatalf("after a failed check: %+v %+v", cs, cs.External)
	}

	sys.set("CHG0012345", `{"approved": true, "state": "scheduled", "message": "CAB approved"}`, 0)
	if _, err := c.Confirm(ctx, store.Actor{Name: "alice"}, name); err != nil {
		t.Fatal(err)
	}
	if st, g := promo(t, w); st.Phase != promotion.Succeeded || !strings.Contains(g, "servicenow says CHG0012345 is approved") {
		t.Fatalf("after the approval: %s %s", st.Phase, g)
	}
}

func TestExternalRejectionAndUnknownKey(t *testing.T) {
	ctx := context.Background()
	sys := &itsm{answers: map[string]string{"OPS-1": `{"approved": false, "state": "Rejected", "message": "too risky"}`}}
	srv := httptest.NewServer(sys)
	defer srv.Close()
	w, c := newWorld(t, `---
apiVersion: airlock.dev/v1
kind: ChangeSystem
metadata: {name: jira}
spec: {url: "`+srv.URL+`/api/changes/{key}", tokenEnv: JIRA_TOKEN}
`)
	c.SetConfirmer(&change.Confirmer{Client: srv.Client(), Getenv: func(string) string { return "s3cret" }})
	unknown := create(t, c, "deployer", &change.External{System: "jira", Key: "OPS-404"})
	if _, err := c.Confirm(ctx, store.Actor{Name: "alice"}, unknown); err == nil || !strings.Contains(err.Error(), "does not know OPS-404 (404)") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := c.Close(ctx, store.Actor{Name: "deployer"}, unknown, "wrong key"); err != nil {
		t.Fatal(err)
	}
	name := create(t, c, "deployer", &change.External{System: "jira", Key: "OPS-1"})
	if _, err := c.Confirm(ctx, store.Actor{Name: "alice"}, name); err != nil {
		t.Fatal(err)
	}
	if st, g := promo(t, w); st.Phase != promotion.Blocked || !strings.Contains(g, "jira rejected OPS-1: too risky") {
		t.Fatalf("after the external rejection: %s %s", st.Phase, g)
	}
}

func TestChangeSystemValidation(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{`{url: "ftp://x/{key}"}`, "spec.url"},
		{`{url: "https://itsm.example.com/api/changes"}`, "must contain {key}"},
		{`{url: "https://user:pw@itsm.example.com/{key}"}`, "must not carry credentials"},
		{`{url: "https://x/{key}", urlEnv: X}`, "give url or urlEnv, not both"},
		{`{urlEnv: "not a name"}`, "spec.urlEnv"},
		{`{url: "https://x/{key}", tokenEnv: "$TOKEN"}`, "spec.tokenEnv"},
		{`{url: "https://x/{key}", timeout: 5m}`, "at most 60s"},
	} {
		doc := "apiVersion: airlock.dev/v1\nkind: ChangeSystem\nmetadata: {name: s}\nspec: " + tc.spec + "\n"
		_, err := server.NewScheme().Decode("s.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestGateSpecFields(t *testing.T) {
	base := world[:strings.Index(world, "    - {type: changeRequest")]
	for _, tc := range []struct{ gate, want string }{
		{`{type: changeRequest, minPercent: 80}`, "minPercent does not apply to a changeRequest gate"},
		{`{type: changeRequest, require: {tech-lead: 0}}`, "must be from 1 to 10"},
		{`{type: changeRequest, maxAge: forever}`, `maxAge "forever"`},
	} {
		doc := base + "    - " + tc.gate + "\n"
		objs, err := server.NewScheme().Decode("p.yaml", []byte(doc))
		if err == nil {
			w := promotiontest.New(t, world)
			_, err = catalog.New(w.Store, server.NewScheme()).Apply(context.Background(), store.Actor{Name: "admin"}, objs, false)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.gate, err, tc.want)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`{"approved": true}`, "true", true},
		{`{"approved": false, "state": "new", "message": "line1\nline2"}`, "false new line1 line2", true},
		{`{"state": "approved"}`, `lacks "approved"`, false},
		{`{"approved": "yes"}`, "not a JSON object", false},
		{`[]`, "not a JSON object", false},
		{``, "not a JSON object", false},
		{strings.Repeat(" ", change.MaxAnswerBytes+1), "at most", false},
	} {
		a, err := change.ParseAnswer([]byte(tc.in))
		got := strings.TrimSpace(strings.Join([]string{map[bool]string{true: "true", false: "false"}[a.Approved], a.State, a.Message}, " "))
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"approved": true, "state": "scheduled", "message": "ok"}`, `{"approved": false}`, `{}`, `null`, `{"approved": true}{"approved": false}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := change.ParseAnswer(data)
		if err != nil {
			return
		}
		if len(a.State) > 500 || len(a.Message) > 500 || strings.ContainsAny(a.State+a.Message, "\n\r\x00") {
			t.Fatalf("answer not cleaned: %+v", a)
		}
	})
}
