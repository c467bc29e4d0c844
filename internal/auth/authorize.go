package auth

import (
	"fmt"
	"sort"
	"strings"
)

// Action is something a caller asks to do. Every API route maps to one.
type Action string

// Actions. Kind-generic routes map (verb, kind) to one of these with
// ActionFor.
const (
	ReadResources   Action = "resources.read"     // get, list, watch of declared and system kinds
	WriteConfig     Action = "config.write"       // Environment, Pipeline, Application, RoleBinding
	CreateRelease   Action = "releases.create"    // register a release
	DeleteRelease   Action = "releases.delete"    // remove a release record
	ReadTokens      Action = "tokens.read"        // list tokens (never secrets)
	ManageTokens    Action = "tokens.manage"      // create, revoke
	ReadAudit       Action = "audit.read"         // list, export, verify, public key
	SignCheckpoint  Action = "audit.checkpoint"   // sign a checkpoint now
	AddEvidence     Action = "evidence.add"       // attach CI evidence to a release
	SignOff         Action = "evidence.signoff"   // record a person's sign-off (role-checked)
	Promote         Action = "promotions.request" // ask to promote a release into an environment
	Approve         Action = "promotions.approve" // approve or reject a promotion (role-checked per environment)
	ManageKeys      Action = "keys.manage"        // register and remove CI signing keys
	ManageIncidents Action = "incidents.manage"   // open and close incidents
	CompleteReview  Action = "reviews.complete"   // sign a post-emergency review (role-checked against its chain)
	ManageChanges   Action = "changes.manage"     // raise, update and close change requests
	ManageRollouts  Action = "rollouts.manage"    // pause, resume, promote, abort and roll back rollouts
	EvaluateFlags   Action = "flags.evaluate"     // evaluate an environment's flags over OFREP
	ManageFlags     Action = "flags.manage"       // propose flag changes (apply, set, delete) and withdraw them
	RequestAccess   Action = "access.request"     // ask for just-in-time access (and collect or revoke one's own)
	ManageAccess    Action = "access.manage"      // revoke anyone's access
	ReadAccess      Action = "access.report"      // who had access, when, next to the deployments
	Identify        Action = "whoami"             // who am I

	OpenBreakGlass   Action = "breakglass.open"   // open or drill a break-glass credential: no approval, a reason; audited and alerted
	ManageBreakGlass Action = "breakglass.manage" // store (seal) a break-glass credential
)

// permission is who may do an action. Scoped is true when the action
// targets an environment, so a grant limited to environments can allow it;
// otherwise only unscoped grants count (except for reads).
type permission struct {
	roles  []Role
	scoped bool
}

// everyone is every role of a person or a pipeline: an evaluation key
// (Evaluator) evaluates flags and reads nothing else.
var everyone = []Role{Admin, Deployer, CI, TechLead, Security, SRE, BusinessOwner, EmergencyApprover, Auditor}

var permissions = map[Action]permission{
	ReadResources:   {roles: everyone, scoped: true},
	WriteConfig:     {roles: []Role{Admin}, scoped: true},
	CreateRelease:   {roles: []Role{Admin, CI, Deployer}, scoped: true},
	DeleteRelease:   {roles: []Role{Admin}},
	ReadTokens:      {roles: []Role{Admin, Auditor}},
	ManageTokens:    {roles: []Role{Admin}},
	ReadAudit:       {roles: []Role{Admin, Auditor}},
	SignCheckpoint:  {roles: []Role{Admin, Auditor}},
	Identify:        {roles: everyone, scoped: true},
	AddEvidence:     {roles: []Role{Admin, CI, Deployer}, scoped: true},
	SignOff:         {roles: []Role{Admin, TechLead, Security, SRE, BusinessOwner}, scoped: true},
	Promote:         {roles: []Role{Admin, Deployer, CI}, scoped: true},
	Approve:         {roles: []Role{Admin, TechLead, Security, SRE, BusinessOwner, EmergencyApprover}, scoped: true},
	CompleteReview:  {roles: []Role{Admin, TechLead, Security, SRE, BusinessOwner}, scoped: true},
	ManageChanges:   {roles: []Role{Admin, Deployer, CI, TechLead, SRE}, scoped: true},
	ManageRollouts:  {roles: []Role{Admin, Deployer, TechLead, SRE}, scoped: true},
	EvaluateFlags:   {roles: []Role{Admin, Evaluator}, scoped: true},
	ManageFlags:     {roles: []Role{Admin, Deployer, TechLead, SRE}, scoped: true},
	RequestAccess:   {roles: everyone, scoped: true},
	ManageAccess:    {roles: []Role{Admin, SRE, Security, TechLead}, scoped: true},
	ReadAccess:      {roles: []Role{Admin, Auditor, Security, SRE, TechLead}, scoped: true},
	ManageKeys:      {roles: []Role{Admin}},
	ManageIncidents: {roles: []Role{Admin, Deployer, SRE, TechLead, Security}, scoped: true},

	OpenBreakGlass:   {roles: []Role{Admin, SRE, TechLead}, scoped: true},
	ManageBreakGlass: {roles: []Role{Admin}, scoped: true},
}

// Actions lists every action, sorted, for tests that walk the whole matrix.
func Actions() []Action {
	out := make([]Action, 0, len(permissions))
	for a := range permissions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// AllowedRoles lists the roles that may perform a.
func AllowedRoles(a Action) []Role { return permissions[a].roles }

// ActionFor maps a verb on a kind to the action that governs it. verb is
// "read", "write" or "delete".
func ActionFor(verb, kind string) Action {
	switch {
	case verb == "read" && kind == TokenKind:
		return ReadTokens
	case verb == "read":
		return ReadResources
	case kind == TokenKind:
		return ManageTokens
	case kind == "Release" && verb == "delete":
		return DeleteRelease
	case kind == "Release":
		return CreateRelease
	case kind == "Key":
		return ManageKeys
	case kind == "Flag", kind == "FlagPlan":
		return ManageFlags
	default:
		return WriteConfig
	}
}

// ForbiddenError says who was refused what, and which roles would allow it.
type ForbiddenError struct {
	Principal string
	Action    Action
	Env       string
	Have      []string
	Need      []Role
}

func (e *ForbiddenError) Error() string {
	need := make([]string, len(e.Need))
	for i, r := range e.Need {
		need[i] = string(r)
	}
	where := ""
	if e.Env != "" {
		where = fmt.Sprintf(" in environment %q", e.Env)
	}
	have := "no roles"
	if len(e.Have) > 0 {
		have = "roles " + strings.Join(e.Have, ", ")
	}
	return fmt.Sprintf("%s may not %s%s: it needs one of the roles %s (it has %s); ask an admin for a role binding",
		e.Principal, e.Action, where, strings.Join(need, ", "), have)
}

// Authorize decides whether p may perform a, in environment env when the
// action targets one (env "" otherwise). A nil error allows it. An unknown
// action is refused: the permission table must name every action.
func Authorize(p *Principal, a Action, env string) error {
	perm, ok := permissions[a]
	if !ok {
		return &ForbiddenError{Principal: p.Name, Action: a, Env: env, Have: p.RoleNames()}
	}
	for _, g := range p.Grants {
		if len(g.Environments) > 0 {
			if !perm.scoped {
				continue
			}
			// A scoped grant allows an environment-less action only for reads,
			// release registration and incidents, which touch no environment.
			if env == "" && a != ReadResources && a != CreateRelease && a != Identify && a != AddEvidence && a != SignOff && a != ManageIncidents && a != ManageChanges {
				continue
			}
			if env != "" && !contains(g.Environments, env) {
				continue
			}
		}
		for _, r := range g.Roles {
			if containsRole(perm.roles, r) {
				return nil
			}
		}
	}
	return &ForbiddenError{Principal: p.Name, Action: a, Env: env, Have: p.RoleNames(), Need: perm.roles}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsRole(list []Role, r Role) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

// MayEver reports whether p holds, in any grant, a role that can perform a
// somewhere. Routes that learn the target environment from the request body
// use it to refuse callers before reading the body; Authorize then decides
// for the environment named.
func MayEver(p *Principal, a Action) error {
	perm, ok := permissions[a]
	if ok {
		for _, g := range p.Grants {
			for _, r := range g.Roles {
				if containsRole(perm.roles, r) {
					return nil
				}
			}
		}
	}
	return &ForbiddenError{Principal: p.Name, Action: a, Have: p.RoleNames(), Need: perm.roles}
}
