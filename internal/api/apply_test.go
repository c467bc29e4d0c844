package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

func (e *env) head() int64 {
	e.t.Helper()
	seq, _, err := e.store.Audit().Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func (e *env) problem(body []byte) (detail string, errs []string) {
	e.t.Helper()
	var p struct {
		Detail string   `json:"detail"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		e.t.Fatalf("not a problem body: %s", body)
	}
	return p.Detail, p.Errors
}

func TestApplyCreatesThenLeavesUnchanged(t *testing.T) {
	e := newEnv(t)
	code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", quickstart)
	if code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	var resp struct {
		Results []struct{ Kind, Name, Action string }
	}
	json.Unmarshal(body, &resp)
	if len(resp.Results) != 5 || resp.Results[0].Action != "created" || resp.Results[4].Name != "shop" {
		t.Fatalf("results: %+v", resp.Results)
	}
	before := e.head()
	code, body = e.do("POST", "/api/v1/apply", e.admin, "application/yaml", quickstart)
	json.Unmarshal(body, &resp)
	if code != 200 || resp.Results[2].Action != "unchanged" {
		t.Fatalf("re-apply: %d %s", code, body)
	}
	if e.head() != before {
		t.Fatalf("an unchanged apply wrote %d audit entries", e.head()-before)
	}
	changed := strings.Replace(quickstart, "owners: [team-shop]", "owners: [team-shop, team-pay]", 1)
	code, body = e.do("POST", "/api/v1/apply", e.admin, "application/yaml", changed)
	json.Unmarshal(body, &resp)
	if code != 200 || resp.Results[4].Action != "configured" {
		t.Fatalf("apply change: %d %s", code, body)
	}
	if e.head() != before+1 {
		t.Fatalf("one change wrote %d entries", e.head()-before)
	}
}

func TestProdWaiverIsRecordedAsViolation(t *testing.T) {
	e := newEnv(t)
	e.seed()
	obj, err := e.store.Get(context.Background(), "Environment", "prod")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Violations []struct {
			Rule    string
			Message string
			Waived  bool
		}
	}
	obj.DecodeStatus(&st)
	if len(st.Violations) != 1 || !st.Violations[0].Waived || !strings.Contains(st.Violations[0].Message, "single machine") {
		t.Fatalf("prod status: %s", obj.Status)
	}
}

func TestApplyIsAtomic(t *testing.T) {
	e := newEnv(t)
	e.seed()
	before := e.head()
	tests := []struct {
		name   string
		doc    string
		code   int
		detail string
	}{
		{"unknown field in second document", strings.Replace(quickstart, "owners:", "ownerz:", 1), 400, "spec.ownerz: unknown field"},
		{"production data outside production", strings.Replace(quickstart, "tier: staging, data: masked", "tier: staging, data: production", 1), 400, "production"},
		{"prod shares the dev network", strings.Replace(quickstart, "network: prod-net", "network: dev-net", 1), 422, "dev-net"},
		{"pipeline without non-production stage", strings.Replace(quickstart, "stages: [{environment: dev}, {environment: staging}, {environment: prod}]", "stages: [{environment: prod}, {environment: prod-b}]", 1), 422, "prod-b"},
		{"prod claims cluster on the local runtime", strings.Replace(strings.Replace(quickstart, "    level: labels\n    network: prod-net", "    level: cluster\n    network: prod-net", 1), "    waiver: {reason: \"single machine: the local runtime shares one host\"}\n", "", 1), 422, "labels"},
		{"malformed yaml", quickstart + "\n---\nkind: [unclosed", 400, "request body:33: not valid YAML"},
		{"unknown kind", quickstart + "---\napiVersion: airlock.dev/v1\nkind: Gizmo\nmetadata: {name: g}\nspec: {}\n", 400, "unknown kind"},
		{"release of an unknown application", quickstart + "---\napiVersion: airlock.dev/v1\nkind: Release\nmetadata: {name: ghost-1.0.0}\nspec: {app: ghost, version: 1.0.0, commit: 9f2c1e7, artifact: {digest: \"sha256:" + strings.Repeat("ab", 32) + "\"}}\n", 422, "application \"ghost\" does not exist"},
		{"tokens cannot be applied", quickstart + "---\napiVersion: airlock.dev/v1\nkind: Token\nmetadata: {name: t}\nspec: {roles: [admin]}\n", 400, "cannot be applied"},
	}
	for _, tc := range tests {
		// Each case changes the shop app too, so a partial apply would show.
		doc := strings.Replace(tc.doc, "pipeline: default}", "pipeline: default, description: changed}", 1)
		code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", doc)
		detail, errs := e.problem(body)
		all := detail + "\n" + strings.Join(errs, "\n")
		if code != tc.code || !strings.Contains(all, tc.detail) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tc.name, code, all, tc.code, tc.detail)
		}
		// The refusal itself is audited, and nothing else is written.
		var entries []audit.Entry
		e.store.Audit().Entries(context.Background(), store.AuditFilter{After: before}, func(en audit.Entry) error { entries = append(entries, en); return nil })
		if len(entries) != 1 || entries[0].Action != "refused-apply" || entries[0].Actor != "admin" || !strings.HasPrefix(entries[0].Reason, "apply refused (") {
			t.Fatalf("%s: audit after a rejected apply: %+v", tc.name, entries)
		}
		before = e.head()
		app, _ := e.store.Get(context.Background(), "Application", "shop")
		if strings.Contains(string(app.Spec), "changed") {
			t.Fatalf("%s: a rejected apply changed Application/shop", tc.name)
		}
	}
}

func TestDecodeErrorNamesFileAndLine(t *testing.T) {
	e := newEnv(t)
	doc := strings.Replace(quickstart, "{tier: staging,", "{tier: staging, colour: blue,", 1)
	req := doc
	code, body := e.doWithSource("quickstart.yaml", req)
	_, errs := e.problem(body)
	if code != 400 || len(errs) != 1 || !strings.HasPrefix(errs[0], "quickstart.yaml:9: Environment/staging: spec.colour: unknown field") {
		t.Fatalf("%d %q", code, errs)
	}
}

func (e *env) doWithSource(source, body string) (int, []byte) {
	e.t.Helper()
	return e.doHeaders("POST", "/api/v1/apply", e.admin, map[string]string{"Content-Type": "application/yaml", "X-Airlock-Source": source}, body)
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.head()
	code, body := e.do("POST", "/api/v1/apply?dryRun=true", e.admin, "application/yaml", quickstart)
	if code != 200 || !strings.Contains(string(body), `"dryRun": true`) || !strings.Contains(string(body), "created") {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if e.head() != before {
		t.Fatal("dry run wrote audit entries")
	}
	if _, err := e.store.Get(context.Background(), "Environment", "dev"); err == nil {
		t.Fatal("dry run created an environment")
	}
}

func TestDeleteRefusesReferencedEnvironment(t *testing.T) {
	e := newEnv(t)
	e.seed()
	code, body := e.do("DELETE", "/api/v1/environments/staging?reason=cleanup", e.admin, "", "")
	detail, _ := e.problem(body)
	if code != 422 || !strings.Contains(detail, "staging") || !strings.Contains(detail, "default") {
		t.Fatalf("%d %s", code, detail)
	}
	if _, err := e.store.Get(context.Background(), "Environment", "staging"); err != nil {
		t.Fatal("staging was deleted")
	}
	code, _ = e.do("DELETE", "/api/v1/applications/shop?reason=retired", e.admin, "", "")
	if code != 200 {
		t.Fatalf("delete shop: %d", code)
	}
	var last audit.Entry
	e.store.Audit().Entries(context.Background(), store.AuditFilter{}, func(en audit.Entry) error { last = en; return nil })
	if last.Action != "delete" || last.Name != "shop" || last.Reason != "retired" || !strings.HasPrefix(last.Actor, "admin") {
		t.Fatalf("last entry %+v", last)
	}
}

func TestCompareAndSwap(t *testing.T) {
	e := newEnv(t)
	e.seed()
	_, body := e.do("GET", "/api/v1/applications/shop", e.admin, "", "")
	var obj resource.Object
	json.Unmarshal(body, &obj)
	results := make(chan int, 8)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := obj.DeepCopy()
			o.Spec = json.RawMessage(strings.Replace(string(o.Spec), `"pipeline"`, `"description":"writer `+string(rune('a'+i))+`","pipeline"`, 1))
			b, _ := json.Marshal(o)
			code, _ := e.do("PUT", "/api/v1/applications/shop", e.admin, "application/json", string(b))
			results <- code
		}(i)
	}
	wg.Wait()
	close(results)
	var ok, conflict int
	for c := range results {
		switch c {
		case 200:
			ok++
		case 409:
			conflict++
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 || conflict != 7 {
		t.Fatalf("%d updates won and %d conflicted; want exactly one winner", ok, conflict)
	}
}

func TestReleases(t *testing.T) {
	e := newEnv(t)
	e.seed()
	_, body := e.do("GET", "/api/v1/releases?selector=app%3Dshop", e.tokens[auth.Auditor], "", "")
	var list struct{ Items []resource.Object }
	json.Unmarshal(body, &list)
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "shop-1.0.0" || list.Items[0].Metadata.Labels["app"] != "shop" {
		t.Fatalf("releases: %s", body)
	}
	var spec struct{ Creator string }
	json.Unmarshal(list.Items[0].Spec, &spec)
	if spec.Creator != "as-ci" {
		t.Fatalf("creator not recorded: %s", list.Items[0].Spec)
	}
	before := e.head()
	dup := `{"app":"shop","version":"1.0.0","artifact":{"digest":"sha256:` + strings.Repeat("ef", 32) + `"},"commit":"9f2c1e7"}`
	code, body := e.do("POST", "/api/v1/releases", e.tokens[auth.CI], "application/json", dup)
	detail, _ := e.problem(body)
	if code != 409 || !strings.Contains(detail, "immutable") {
		t.Fatalf("duplicate release: %d %s", code, detail)
	}
	for name, req := range map[string]string{
		"unknown app":  `{"app":"nope","version":"1.0.0","artifact":{"digest":"sha256:` + strings.Repeat("ef", 32) + `"},"commit":"9f2c1e7"}`,
		"bad digest":   `{"app":"shop","version":"1.0.1","artifact":{"digest":"md5:abc"},"commit":"9f2c1e7"}`,
		"bad commit":   `{"app":"shop","version":"1.0.1","artifact":{"digest":"sha256:` + strings.Repeat("ef", 32) + `"},"commit":"xyz"}`,
		"forged field": `{"app":"shop","version":"1.0.1","creator":"someone-else","artifact":{"digest":"sha256:` + strings.Repeat("ef", 32) + `"},"commit":"9f2c1e7"}`,
	} {
		code, body := e.do("POST", "/api/v1/releases", e.tokens[auth.CI], "application/json", req)
		if code/100 != 4 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if e.head() != before {
		t.Fatal("rejected releases wrote audit entries")
	}
	// A release is immutable through apply, too.
	_, body = e.do("GET", "/api/v1/releases/shop-1.0.0", e.admin, "", "")
	changed := strings.Replace(string(body), `"9f2c1e7"`, `"1234567"`, 1)
	code, body = e.do("POST", "/api/v1/apply", e.admin, "application/json", changed)
	if code != 409 {
		t.Fatalf("apply changing a release: %d %s", code, body)
	}
}

func TestTokensNeverLeakSecrets(t *testing.T) {
	e := newEnv(t)
	code, body := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"ci-bot","roles":["ci"],"environments":["dev"]}`)
	var issued struct{ Token string }
	json.Unmarshal(body, &issued)
	if code != 201 || !strings.HasPrefix(issued.Token, "alk_ci-bot_") {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body = e.do("GET", "/api/v1/whoami", issued.Token, "", "")
	if code != 200 || !strings.Contains(string(body), `"ci-bot"`) {
		t.Fatalf("whoami: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/tokens", "/api/v1/tokens/ci-bot", "/api/v1/audit/entries", "/api/v1/audit/export"} {
		_, body := e.do("GET", path, e.admin, "", "")
		secret := issued.Token[strings.LastIndexByte(issued.Token, '_')+1:]
		if strings.Contains(string(body), secret) || strings.Contains(string(body), auth.HashSecret(issued.Token)) {
			t.Errorf("%s shows the token or its hash", path)
		}
	}
	code, _ = e.do("DELETE", "/api/v1/tokens/ci-bot?reason=leaked", e.admin, "", "")
	if code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := e.do("GET", "/api/v1/whoami", issued.Token, "", ""); code != 401 {
		t.Fatalf("revoked token still works: %d", code)
	}
	if code, _ := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"ci-bot","roles":["ci"]}`); code != 409 {
		t.Fatalf("reusing a revoked identity: %d", code)
	}
	if code, _ := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"x","roles":["root"]}`); code != 400 {
		t.Fatalf("unknown role: %d", code)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	e := newEnv(t)
	e.seed()
	code, body := e.do("POST", "/api/v1/audit/checkpoints", e.admin, "", "")
	if code != 201 {
		t.Fatalf("checkpoint: %d %s", code, body)
	}
	code, body = e.do("POST", "/api/v1/audit/verify", e.tokens[auth.Auditor], "", "")
	var v struct {
		OK      bool
		Summary string
	}
	json.Unmarshal(body, &v)
	if code != 200 || !v.OK || !strings.HasSuffix(v.Summary, "chain intact, last checkpoint signed") {
		t.Fatalf("verify: %d %s", code, body)
	}
	db := e.store.(interface{ DB() *sqlDB }).DB()
	if _, err := db.Exec(`UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	_, body = e.do("POST", "/api/v1/audit/verify", e.tokens[auth.Auditor], "", "")
	json.Unmarshal(body, &v)
	if v.OK || !strings.Contains(v.Summary, "entry 3") {
		t.Fatalf("tampered log verified: %s", body)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("#", resource.MaxInputBytes+10)
	code, _ := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", big)
	if code != 413 {
		t.Fatalf("oversized body: %d, want 413", code)
	}
}

func TestWatchStreamsChanges(t *testing.T) {
	e := newEnv(t)
	start := e.head()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/watch/environments?after="+strconv.FormatInt(start, 10), nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[auth.SRE])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e.seed()
	e.do("DELETE", "/api/v1/pipelines/default", e.admin, "", "")
	e.do("DELETE", "/api/v1/applications/shop", e.admin, "", "")
	if code, body := e.do("DELETE", "/api/v1/pipelines/default", e.admin, "", ""); code != 200 {
		t.Fatalf("delete pipeline: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/api/v1/environments/dev", e.admin, "", ""); code != 200 {
		t.Fatalf("delete dev: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for sc.Scan() {
		line := sc.Text()
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			got = append(got, ev)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev store.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Kind != "Environment" {
				t.Fatalf("event data %s: %v", data, err)
			}
			got[len(got)-1] += " " + ev.Name
			if ev.Name == "prod" && ev.Type == store.Created && !strings.Contains(string(ev.Object.Status), "waived") {
				t.Errorf("prod's created event should carry its latest state (status recorded in the same transaction): %s", ev.Object.Status)
			}
			if len(got) == 4 {
				break
			}
		}
	}
	// dev, staging and prod are created, and prod's status is updated in the
	// same transaction, so the watch coalesces that update into prod's
	// created event; dev is deleted later.
	want := []string{"created dev", "created staging", "created prod", "deleted dev"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestRecordsCannotBeDeleted(t *testing.T) {
	e := newEnv(t)
	for _, plural := range []string{"evidence", "promotions", "reviews", "incidents", "approvals"} {
		code, body := e.do("DELETE", "/api/v1/"+plural+"/anything", e.admin, "", "")
		if code != 400 || !strings.Contains(string(body), "kept for the audit trail") {
			t.Errorf("DELETE %s: %d %s", plural, code, body)
		}
	}
}

// TestRefusedApplyIsAuditedWithoutValues: an RRULE that does not parse is
// refused and the attempt audited, naming the field but never its value
// (a refused value may be a secret, here a URL with a password).
func TestRefusedApplyIsAuditedWithoutValues(t *testing.T) {
	e := newEnv(t)
	before := e.head()
	doc := `apiVersion: airlock.dev/v1
kind: Window
metadata: {name: bad}
spec: {kind: deny, timeZone: UTC, rrule: "FREQ=SOMETIMES", duration: 1h}
---
apiVersion: airlock.dev/v1
kind: ChangeSystem
metadata: {name: snow}
spec: {url: "https://airlock:hunter2@itsm.example.com/{key}"}
`
	code, body := e.doWithSource("bad.yaml", doc)
	_, errs := e.problem(body)
	if code != 400 || len(errs) != 2 || !strings.Contains(errs[0], "spec.rrule") {
		t.Fatalf("%d %q", code, errs)
	}
	var entries []audit.Entry
	e.store.Audit().Entries(context.Background(), store.AuditFilter{After: before}, func(en audit.Entry) error { entries = append(entries, en); return nil })
	if len(entries) != 1 || entries[0].Action != "refused-apply" || entries[0].Kind != "Window" || entries[0].Name != "bad" ||
		!strings.Contains(entries[0].Reason, "bad.yaml:4 Window/bad spec.rrule") || !strings.Contains(entries[0].Reason, "ChangeSystem/snow spec.url") {
		t.Fatalf("audit: %+v", entries)
	}
	if strings.Contains(entries[0].Reason, "hunter2") || strings.Contains(entries[0].Reason, "SOMETIMES") {
		t.Fatalf("the audit entry quotes a refused value: %s", entries[0].Reason)
	}
}
