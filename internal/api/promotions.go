package api

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/keys"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

func (a *API) registerPromotionRoutes() {
	a.handle("POST", "/api/v1/evidence", "Attach a CI report to a release (query: app, version, type, suite, name; body: the document as the tool wrote it, or a DSSE envelope).", rule{action: auth.AddEvidence}, a.addEvidence, bodyLimit(evidence.MaxDocumentBytes))
	a.handle("POST", "/api/v1/signoffs", "Record the caller's sign-off on a release (query: app, version; body: {kind, role, reason, reference}).", rule{action: auth.SignOff}, a.addSignoff)
	a.handle("POST", "/api/v1/promotions", "Ask to promote a release into an environment; every gate of the transition is evaluated and recorded.", rule{action: auth.Promote, inHandler: true}, a.promote)
	a.handle("POST", "/api/v1/promotions/{name}/approve", "Approve a promotion (body: {reason}); the caller's roles for its environment are recorded and the promotion is re-judged.", rule{action: auth.Approve, inHandler: true}, a.vote(approval.Approve))
	a.handle("POST", "/api/v1/promotions/{name}/reject", "Reject a promotion (body: {reason}); a rejection blocks it.", rule{action: auth.Approve, inHandler: true}, a.vote(approval.Reject))
	a.handle("GET", "/api/v1/approvals/pending", "List promotions waiting for approvals (query: mine=true for those the caller could approve).", rule{action: auth.ReadResources}, a.pendingApprovals)
	a.handle("POST", "/api/v1/keys", "Register a CI signing key (ed25519 or ECDSA P-256 public key, PEM).", rule{action: auth.ManageKeys}, a.addKey)
	a.handle("GET", "/api/v1/blobs/{digest}", "Download a stored document (evidence as delivered) by its sha256 digest.", rule{action: auth.ReadResources}, a.blob)
}

// evidenceRequest spools the uploaded document to a temporary file, so a
// large report is never held in memory whole; the caller must call the
// returned cleanup.
func (a *API) evidenceRequest(r *http.Request, typ evidence.Type) (ingest.Request, func(), error) {
	q := r.URL.Query()
	req := ingest.Request{App: q.Get("app"), Version: q.Get("version"), Type: typ, Suite: evidence.Suite(q.Get("suite")), Name: q.Get("name")}
	if req.App == "" || req.Version == "" {
		return req, func() {}, badRequestf("app and version are required query parameters")
	}
	f, err := os.CreateTemp("", "airlock-evidence-*")
	if err != nil {
		return req, func() {}, fmt.Errorf("spool upload: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, r.Body)
	if err != nil {
		cleanup()
		return req, func() {}, err
	}
	req.Body, req.Size = f, n
	return req, cleanup, nil
}

func (a *API) addEvidence(w http.ResponseWriter, r *http.Request, c *call) error {
	typ := evidence.Type(r.URL.Query().Get("type"))
	if typ == evidence.Signoff {
		return badRequestf("sign-offs are recorded with POST /api/v1/signoffs (airlock evidence add APP VERSION --type signoff --kind K --role R --reason TEXT)")
	}
	req, cleanup, err := a.evidenceRequest(r, typ)
	defer cleanup()
	if err != nil {
		return err
	}
	obj, err := a.Ingest.Add(r.Context(), c.actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

func (a *API) addSignoff(w http.ResponseWriter, r *http.Request, c *call) error {
	req, cleanup, err := a.evidenceRequest(r, evidence.Signoff)
	defer cleanup()
	if err != nil {
		return err
	}
	req.CanSignAs = func(role string) bool { return c.principal.HoldsRole(auth.Role(role)) }
	obj, err := a.Ingest.Add(r.Context(), c.actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

func (a *API) promote(w http.ResponseWriter, r *http.Request, c *call) error {
	var req promotion.Request
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.Promote, req.To); err != nil {
		return err
	}
	actor := c.actor(r)
	if req.Emergency != nil && actor.Reason == "" {
		actor.Reason = fmt.Sprintf("emergency (incident %s): %s", req.Emergency.Incident, req.Emergency.Reason)
	}
	obj, err := a.Promotions.Request(r.Context(), actor, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

// VoteRequest is the body of an approve or reject request.
type VoteRequest struct {
	Reason string `json:"reason"`
}

func (a *API) vote(d approval.Decision) func(http.ResponseWriter, *http.Request, *call) error {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req VoteRequest
		if err := readJSON(r, &req); err != nil {
			return err
		}
		name := r.PathValue("name")
		env, err := a.Promotions.Target(r.Context(), name)
		if err != nil {
			return err
		}
		if err := auth.Authorize(c.principal, auth.Approve, env); err != nil {
			return err
		}
		actor := c.actor(r)
		actor.Reason = fmt.Sprintf("%s: %s", d, req.Reason)
		obj, err := a.Promotions.Vote(r.Context(), actor, promotion.Vote{Promotion: name, Decision: d, Reason: req.Reason, Roles: rolesFor(c.principal)(env)})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, obj)
	}
}

// rolesFor returns the roles p holds in an environment.
func rolesFor(p *auth.Principal) func(env string) []string {
	return func(env string) []string {
		var out []string
		for _, role := range auth.Roles {
			if p.HasRole(role, env) {
				out = append(out, string(role))
			}
		}
		return out
	}
}

func (a *API) pendingApprovals(w http.ResponseWriter, r *http.Request, c *call) error {
	mine := r.URL.Query().Get("mine") == "true"
	objs, err := a.Promotions.PendingApprovals(r.Context(), c.principal.Name, rolesFor(c.principal), mine)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, List{APIVersion: resource.APIVersion, Kind: "List", Items: objs})
}

// KeyRequest registers a CI signing key.
type KeyRequest struct {
	Name        string `json:"name"`
	PublicKey   string `json:"publicKey"`
	Identity    string `json:"identity"`
	Description string `json:"description,omitempty"`
}

func (a *API) addKey(w http.ResponseWriter, r *http.Request, c *call) error {
	var req KeyRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := resource.ValidateName(req.Name); err != nil {
		return badRequestf("key name: %v", err)
	}
	if req.Identity == "" {
		req.Identity = req.Name
	}
	spec, err := keys.NewSpec([]byte(req.PublicKey), req.Identity, req.Description)
	if err != nil {
		return badRequestf("%v", err)
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: keys.Kind, Metadata: resource.Metadata{Name: req.Name}}
	if err := obj.SetSpec(spec); err != nil {
		return err
	}
	var created *resource.Object
	err = a.Store.Write(r.Context(), c.actor(r), func(tx store.Tx) error {
		var err error
		created, err = tx.Create(r.Context(), obj)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, created)
}

func (a *API) blob(w http.ResponseWriter, r *http.Request, _ *call) error {
	digest := r.PathValue("digest")
	if !strings.HasPrefix(digest, "sha256:") {
		digest = "sha256:" + digest
	}
	data, err := a.Store.Blob(r.Context(), digest)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Digest", digest)
	_, err = w.Write(data)
	return err
}
