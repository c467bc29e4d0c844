package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/flagchange"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/keys"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func (a *API) registerRoutes() {
	pub := rule{public: true}
	a.handle("GET", "/healthz", "Liveness: the process serves HTTP.", pub, a.healthz)
	a.handle("GET", "/readyz", "Readiness: the store answers.", pub, a.readyz)
	a.handle("GET", "/api/v1/openapi.json", "This OpenAPI document.", pub, a.openapi)

	a.handle("GET", "/api/v1/whoami", "The caller's identity and grants.", rule{action: auth.Identify}, a.whoami)
	a.handle("POST", "/api/v1/apply", "Create or update declared objects atomically (YAML or JSON, one or more documents).", rule{action: auth.WriteConfig, inHandler: true}, a.apply)
	a.handle("POST", "/api/v1/releases", "Register an immutable release of an application.", rule{action: auth.CreateRelease}, a.createRelease)

	a.handle("POST", "/api/v1/tokens", "Issue a token; the secret is in this response only.", rule{action: auth.ManageTokens}, a.createToken)
	a.handle("DELETE", "/api/v1/tokens/{name}", "Revoke a token.", rule{action: auth.ManageTokens}, a.revokeToken)

	a.handle("GET", "/api/v1/audit/entries", "List audit entries (filters: actor, kind, since, after, limit).", rule{action: auth.ReadAudit}, a.auditEntries)
	a.handle("GET", "/api/v1/audit/export", "Export the audit log as JSONL with signed checkpoints.", rule{action: auth.ReadAudit}, a.auditExport)
	a.handle("POST", "/api/v1/audit/verify", "Verify the stored audit chain and its checkpoints.", rule{action: auth.ReadAudit}, a.auditVerify)
	a.handle("GET", "/api/v1/audit/checkpoints", "List signed checkpoints.", rule{action: auth.ReadAudit}, a.auditCheckpoints)
	a.handle("POST", "/api/v1/audit/checkpoints", "Sign a checkpoint of the current head now.", rule{action: auth.SignCheckpoint}, a.signCheckpoint)
	a.handle("GET", "/api/v1/audit/public-key", "The ed25519 public key that verifies checkpoints (PEM).", rule{action: auth.ReadAudit}, a.publicKey)

	a.registerPromotionRoutes()
	a.registerIncidentRoutes()
	a.registerReviewRoutes()
	a.registerChangeRoutes()
	a.registerRolloutRoutes()
	a.registerFlagPlanRoutes()
	a.registerOFREPRoutes()
	a.registerFlagStaleRoutes()
	a.registerFlagChangeRoutes()
	a.registerAccessRoutes()
	a.registerBreakGlassRoutes()
	a.registerClusterRoutes()
	a.registerVerdictRoutes()

	a.handle("GET", "/api/v1/watch/{resource}", "Stream changes of a kind as server-sent events.", rule{verb: "read"}, a.watch)
	a.handle("GET", "/api/v1/{resource}", "List objects of a kind (selector: a label selector).", rule{verb: "read"}, a.list)
	a.handle("POST", "/api/v1/{resource}", "Create one object.", rule{verb: "write"}, a.create)
	a.handle("GET", "/api/v1/{resource}/{name}", "Get one object.", rule{verb: "read"}, a.get)
	a.handle("PUT", "/api/v1/{resource}/{name}", "Replace an object's spec and labels (metadata.revision for compare-and-swap).", rule{verb: "write"}, a.update)
	a.handle("DELETE", "/api/v1/{resource}/{name}", "Delete an object (revision for compare-and-swap, reason recorded).", rule{verb: "delete"}, a.delete)
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ *call) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": a.Version})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ *call) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, _, err := a.Store.Audit().Head(ctx); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		return json.NewEncoder(w).Encode(map[string]string{"status": "store unavailable"})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, c *call) error {
	return writeJSON(w, http.StatusOK, map[string]any{"name": c.principal.Name, "roles": c.principal.RoleNames(), "grants": c.principal.Grants})
}

// List is the body of a list response.
type List struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Items      []*resource.Object `json:"items"`
}

func redactAll(objs []*resource.Object) []*resource.Object {
	for i, o := range objs {
		objs[i] = auth.Redact(o)
	}
	return objs
}

func (a *API) list(w http.ResponseWriter, r *http.Request, c *call) error {
	sel, err := resource.ParseSelector(r.URL.Query().Get("selector"))
	if err != nil {
		return badRequestf("%v", err)
	}
	objs, err := a.Store.List(r.Context(), c.kind.Name, sel)
	if err != nil {
		return err
	}
	if objs == nil {
		objs = []*resource.Object{}
	}
	return writeJSON(w, http.StatusOK, List{APIVersion: resource.APIVersion, Kind: "List", Items: redactAll(objs)})
}

func (a *API) get(w http.ResponseWriter, r *http.Request, c *call) error {
	obj, err := a.Store.Get(r.Context(), c.kind.Name, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, auth.Redact(obj))
}

// decodeBody reads one object of the route's kind from a request body.
func (a *API) decodeBody(r *http.Request, c *call) (*resource.Object, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	obj, err := a.Scheme.DecodeObject("request body", body)
	if err != nil {
		return nil, err
	}
	if obj.Kind != c.kind.Name {
		return nil, badRequestf("the body is a %s but the URL names %s", obj.Kind, c.kind.Plural)
	}
	return obj, nil
}

// dedicated lists kinds whose writes go through their own endpoints.
func dedicated(kind string) string {
	switch kind {
	case auth.TokenKind:
		return "use POST /api/v1/tokens (airlock token create) and DELETE /api/v1/tokens/NAME (airlock token revoke)"
	case catalog.ReleaseKind:
		return "use POST /api/v1/releases (airlock release create) or apply"
	case evidence.Kind:
		return "use POST /api/v1/evidence (airlock evidence add)"
	case promotion.Kind:
		return "use POST /api/v1/promotions (airlock promote)"
	case promotion.ReviewKind:
		return "reviews are opened by emergency promotions and signed off with POST /api/v1/reviews/NAME/complete (airlock review complete)"
	case keys.Kind:
		return "use POST /api/v1/keys (airlock key add)"
	case incident.Kind:
		return "use POST /api/v1/incidents (airlock incident open) and POST /api/v1/incidents/NAME/close (airlock incident close)"
	case change.Kind:
		return "use POST /api/v1/changes (airlock change create) and its approve, reject, confirm and close endpoints"
	case flagchange.Kind:
		return "flag changes are proposed by writing a Flag (apply, airlock flags set) and decided with POST /api/v1/flagchanges/NAME/approve, reject or withdraw"
	}
	return ""
}

func (a *API) create(w http.ResponseWriter, r *http.Request, c *call) error {
	if hint := dedicated(c.kind.Name); hint != "" {
		return badRequestf("%s cannot be created here: %s", c.kind.Plural, hint)
	}
	obj, err := a.decodeBody(r, c)
	if err != nil {
		return err
	}
	if _, err := a.Store.Get(r.Context(), obj.Kind, obj.Metadata.Name); err == nil {
		return fmt.Errorf("%s already exists: %w; use PUT to change it, or apply", obj.Ref(), store.ErrConflict)
	}
	res, err := a.Catalog.Apply(r.Context(), c.actor(r), []*resource.Object{obj}, false)
	if err != nil {
		return err
	}
	if res[0].Action == catalog.Proposed {
		return writeJSON(w, http.StatusAccepted, res[0])
	}
	created, err := a.Store.Get(r.Context(), obj.Kind, obj.Metadata.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, created)
}

func (a *API) update(w http.ResponseWriter, r *http.Request, c *call) error {
	if hint := dedicated(c.kind.Name); hint != "" {
		return badRequestf("%s cannot be changed: %s", c.kind.Plural, hint)
	}
	obj, err := a.decodeBody(r, c)
	if err != nil {
		return err
	}
	if obj.Metadata.Name != r.PathValue("name") {
		return badRequestf("metadata.name %q does not match the URL's %q", obj.Metadata.Name, r.PathValue("name"))
	}
	if _, err := a.Store.Get(r.Context(), obj.Kind, obj.Metadata.Name); err != nil {
		return err
	}
	res, err := a.Catalog.Apply(r.Context(), c.actor(r), []*resource.Object{obj}, false)
	if err != nil {
		return err
	}
	if res[0].Action == catalog.Proposed {
		return writeJSON(w, http.StatusAccepted, res[0])
	}
	updated, err := a.Store.Get(r.Context(), obj.Kind, obj.Metadata.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, updated)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, c *call) error {
	switch c.kind.Name {
	case auth.TokenKind:
		return badRequestf("tokens are revoked, not deleted: use DELETE /api/v1/tokens/NAME (airlock token revoke)")
	case evidence.Kind, promotion.Kind, promotion.ReviewKind, incident.Kind, approval.Kind, change.Kind, flagchange.Kind:
		return badRequestf("%s are records of what happened and are kept for the audit trail; they cannot be deleted", c.kind.Plural)
	}
	rev, err := revisionParam(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	res, err := a.Catalog.DeleteResult(r.Context(), c.actor(r), c.kind.Name, name, rev)
	if err != nil {
		return err
	}
	if res.Action == catalog.Proposed {
		return writeJSON(w, http.StatusAccepted, res)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"deleted": c.kind.Name + "/" + name})
}

func revisionParam(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("revision")
	if s == "" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rev < 0 {
		return 0, badRequestf("revision %q is not a revision number", s)
	}
	return rev, nil
}

// ApplyResponse is the body of an apply response.
type ApplyResponse struct {
	DryRun  bool             `json:"dryRun,omitempty"`
	Results []catalog.Result `json:"results"`
}

func (a *API) apply(w http.ResponseWriter, r *http.Request, c *call) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	source := r.Header.Get("X-Airlock-Source")
	if source == "" {
		source = "request body"
	}
	objs, err := a.Scheme.Decode(source, body)
	if err != nil {
		return a.refusedApply(r, c, nil, err)
	}
	if len(objs) == 0 {
		return badRequestf("%s holds no objects", source)
	}
	for _, o := range objs {
		env := ""
		switch o.Kind {
		case catalog.EnvironmentKind:
			env = o.Metadata.Name
		case flag.KindName:
			var fs flag.Spec
			if err := o.DecodeSpec(&fs); err != nil {
				return a.refusedApply(r, c, nil, err)
			}
			env = fs.Environment
		case plan.Kind:
			var ps plan.Spec
			if err := o.DecodeSpec(&ps); err != nil {
				return a.refusedApply(r, c, nil, err)
			}
			env = ps.Flag[strings.LastIndex(ps.Flag, ".")+1:] // APP.KEY.ENV
		}
		if err := auth.Authorize(c.principal, auth.ActionFor("write", o.Kind), env); err != nil {
			return fmt.Errorf("%s: %w", o.Ref(), err)
		}
	}
	dry := r.URL.Query().Get("dryRun") == "true"
	results, err := a.Catalog.Apply(r.Context(), c.actor(r), objs, dry)
	if err != nil {
		if p := problemFor(err); p.Status == http.StatusBadRequest || p.Status == http.StatusUnprocessableEntity {
			return a.refusedApply(r, c, objs, err)
		}
		return err
	}
	return writeJSON(w, http.StatusOK, ApplyResponse{DryRun: dry, Results: results})
}

// refusedApply records a configuration change airlock refused (a field
// that does not validate, an RRULE that does not parse, a separation rule
// broken) as a refused-apply audit entry, and returns err for the caller.
// The entry names the objects and the field paths at fault, never the
// messages: those may quote the values, and a value may be a secret.
func (a *API) refusedApply(r *http.Request, c *call, objs []*resource.Object, err error) error {
	var where []string
	var decodeErrs resource.DecodeErrors
	var fieldErr *resource.FieldError
	switch {
	case errors.As(err, &decodeErrs):
		for _, e := range decodeErrs {
			where = append(where, refusedAt(e))
		}
	case errors.As(err, &fieldErr):
		where = append(where, refusedAt(fieldErr))
	default:
		for _, o := range objs {
			where = append(where, o.Ref())
		}
	}
	if len(where) > 20 {
		where = append(where[:20], fmt.Sprintf("and %d more", len(where)-20))
	}
	kind, name := "", ""
	if len(objs) == 1 {
		kind, name = objs[0].Kind, objs[0].Metadata.Name
	} else if fieldErr != nil || len(decodeErrs) > 0 {
		obj := ""
		if fieldErr != nil {
			obj = fieldErr.Object
		} else {
			obj = decodeErrs[0].Object
		}
		kind, name, _ = strings.Cut(obj, "/")
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("apply refused (%s): %s", problemFor(err).Title, strings.Join(where, "; "))
	if aerr := a.Store.Write(r.Context(), actor, func(tx store.Tx) error {
		return tx.Record(r.Context(), "refused-apply", kind, name, "")
	}); aerr != nil {
		a.logger.WarnContext(r.Context(), "recording a refused apply failed", slog.Any("error", aerr))
	}
	return err
}

func refusedAt(e *resource.FieldError) string {
	s := e.Source
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Object != "" {
		s += " " + e.Object
	}
	if e.Path != "" {
		s += " " + e.Path
	}
	return s
}

func (a *API) createRelease(w http.ResponseWriter, r *http.Request, c *call) error {
	var req catalog.ReleaseRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	obj, err := a.Catalog.CreateRelease(r.Context(), c.actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req auth.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	issued, err := a.Tokens.Create(r.Context(), c.actor(r), req)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, issued)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, c *call) error {
	obj, err := a.Tokens.Revoke(r.Context(), c.actor(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, auth.Redact(obj))
}

func (a *API) watch(w http.ResponseWriter, r *http.Request, c *call) error {
	after, err := int64Param(r, "after")
	if err != nil {
		return err
	}
	events, err := a.Store.Watch(r.Context(), c.kind.Name, after)
	if err != nil {
		return err
	}
	return streamEvents(w, r, events, func(ev store.Event) (string, any, bool) {
		if ev.Object != nil {
			ev.Object = auth.Redact(ev.Object)
		}
		return string(ev.Type), ev, true
	})
}

// streamEvents writes the store events that pass translate as server-sent
// events (id: the revision; event and data: what translate returns, data
// as JSON), with a keep-alive comment every 15 seconds, until the client
// goes or the watch ends.
func streamEvents(w http.ResponseWriter, r *http.Request, events <-chan store.Event, translate func(store.Event) (name string, data any, ok bool)) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported by this connection")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			name, v, send := translate(ev)
			if !send {
				continue
			}
			data, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Revision, name, data); err != nil {
				return nil
			}
			flusher.Flush()
		}
	}
}

func int64Param(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, badRequestf("%s %q is not a non-negative whole number", name, s)
	}
	return v, nil
}

func (a *API) auditEntries(w http.ResponseWriter, r *http.Request, _ *call) error {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Kind: q.Get("kind")}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return badRequestf("since %q is not an RFC 3339 time such as 2026-11-27T10:00:00Z", s)
		}
		f.Since = t
	}
	var err error
	if f.After, err = int64Param(r, "after"); err != nil {
		return err
	}
	limit, err := int64Param(r, "limit")
	if err != nil {
		return err
	}
	if limit == 0 || limit > 10000 {
		limit = 10000
	}
	f.Limit = int(limit)
	if k := f.Kind; k != "" {
		if kd, ok := a.Scheme.Lookup(k); ok {
			f.Kind = kd.Name
		}
	}
	items := []audit.Entry{}
	err = a.Store.Audit().Entries(r.Context(), f, func(e audit.Entry) error {
		items = append(items, e)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

var errStop = errors.New("stop")

func (a *API) auditExport(w http.ResponseWriter, r *http.Request, _ *call) error {
	ctx := r.Context()
	cp, err := a.Checkpointer.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("sign export checkpoint: %w", err)
	}
	cps, err := a.Store.Audit().Checkpoints(ctx)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="airlock-audit.jsonl"`)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	pub := a.Checkpointer.PublicKey()
	if err := enc.Encode(audit.Line{Header: &audit.Header{Format: audit.ExportFormat, KeyID: audit.KeyID(pub), PublicKey: string(audit.EncodePublicKey(pub)), ExportedAt: a.Now().UTC()}}); err != nil {
		return nil
	}
	for i := range cps {
		if cps[i].Size > cp.Size {
			continue
		}
		if err := enc.Encode(audit.Line{Checkpoint: &cps[i]}); err != nil {
			return nil
		}
	}
	err = a.Store.Audit().Entries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
		if e.Seq > cp.Size {
			return errStop // the export ends at the checkpoint it carries
		}
		return enc.Encode(audit.Line{Entry: &e})
	})
	if err != nil && !errors.Is(err, errStop) {
		a.logger.ErrorContext(ctx, "audit export interrupted", "error", err)
	}
	return nil
}

// VerifyResponse is the body of a verify response.
type VerifyResponse struct {
	OK      bool         `json:"ok"`
	Summary string       `json:"summary"`
	Report  audit.Report `json:"report"`
}

func (a *API) auditVerify(w http.ResponseWriter, r *http.Request, _ *call) error {
	ctx := r.Context()
	cps, err := a.Store.Audit().Checkpoints(ctx)
	if err != nil {
		return err
	}
	v := audit.NewVerifier(a.Checkpointer.PublicKey(), cps)
	err = a.Store.Audit().Entries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
		if !v.Add(&e) {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	rep := v.Finish()
	if rep.OK() && rep.Entries > 0 && (rep.LastCheckpoint == nil || rep.LastCheckpoint.Size < rep.Entries) {
		// Seal what was just verified, so an export or a later verification
		// can prove the log was intact up to here. Only a verified head is
		// ever signed.
		cp, err := a.Checkpointer.CheckpointAt(ctx, rep.Entries, rep.Head)
		if err != nil {
			return fmt.Errorf("sign checkpoint after verification: %w", err)
		}
		if cp.Size == rep.Entries && cp.Head == rep.Head {
			rep.LastCheckpoint = &cp
			rep.Checkpoints++
		}
	}
	return writeJSON(w, http.StatusOK, VerifyResponse{OK: rep.OK(), Summary: rep.String(), Report: rep})
}

func (a *API) auditCheckpoints(w http.ResponseWriter, r *http.Request, _ *call) error {
	cps, err := a.Store.Audit().Checkpoints(r.Context())
	if err != nil {
		return err
	}
	if cps == nil {
		cps = []audit.Checkpoint{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": cps})
}

func (a *API) signCheckpoint(w http.ResponseWriter, r *http.Request, _ *call) error {
	cp, err := a.Checkpointer.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, cp)
}

func (a *API) publicKey(w http.ResponseWriter, _ *http.Request, _ *call) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(audit.EncodePublicKey(a.Checkpointer.PublicKey()))
	return err
}
