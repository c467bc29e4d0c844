package change

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// SystemSpec declares an external change system airlock asks whether a
// change is approved. For a change with key K airlock sends
//
//	GET <url with {key} replaced by K>
//	Accept: application/json
//	Authorization: Bearer <value of tokenEnv>   (when tokenEnv is set)
//
// and expects 200 with a JSON object:
//
//	{"approved": true|false, "state": "scheduled", "message": "CAB approved 2026-11-27"}
//
// "approved" is required. state "rejected" (any case) rejects the change;
// any other state with approved false leaves it waiting. A 404 means the
// system does not know the key. Anything else is an error, recorded on the
// change request; the previous answer stands.
type SystemSpec struct {
	URL      string `json:"url,omitempty"`
	URLEnv   string `json:"urlEnv,omitempty"`   // an environment variable of the server holding the URL
	TokenEnv string `json:"tokenEnv,omitempty"` // an environment variable holding a bearer token
	Timeout  string `json:"timeout,omitempty"`  // default 10s, at most 60s
}

// Limits of an external confirmation.
const (
	DefaultTimeout  = 10 * time.Second
	MaxTimeout      = 60 * time.Second
	MaxAnswerBytes  = 64 << 10
	maxAnswerString = 500
)

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateSystem checks a change system on its own; the error names the
// field at fault.
func ValidateSystem(s SystemSpec) error {
	switch {
	case s.URL != "" && s.URLEnv != "":
		return resource.Errorf("spec.urlEnv", "give url or urlEnv, not both")
	case s.URLEnv != "":
		if !envRE.MatchString(s.URLEnv) {
			return resource.Errorf("spec.urlEnv", "urlEnv %q must be an environment variable name such as AIRLOCK_SNOW_URL", s.URLEnv)
		}
	default:
		if err := checkURL(s.URL); err != nil {
			return resource.Errorf("spec.url", "%v", err)
		}
	}
	if s.TokenEnv != "" && !envRE.MatchString(s.TokenEnv) {
		return resource.Errorf("spec.tokenEnv", "tokenEnv %q must be an environment variable name such as AIRLOCK_SNOW_TOKEN (the token itself is never stored in the object)", s.TokenEnv)
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 || d > MaxTimeout {
			return resource.Errorf("spec.timeout", "timeout %q must be a duration above 0 and at most 60s, e.g. 10s", s.Timeout)
		}
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http or https URL with {key} where the change key goes, e.g. https://itsm.example.com/api/changes/{key}", raw)
	}
	if u.User != nil {
		return fmt.Errorf("url must not carry credentials: objects are readable; use tokenEnv")
	}
	if !strings.Contains(raw, "{key}") {
		return fmt.Errorf("url %q must contain {key}, where airlock puts the change's key", raw)
	}
	return nil
}

// Answer is an external system's reply about one change.
type Answer struct {
	Approved bool   `json:"approved"`
	State    string `json:"state"`
	Message  string `json:"message"`
}

// ParseAnswer reads a change system's JSON reply. It accepts at most
// MaxAnswerBytes, requires "approved" to be a boolean, and trims state
// and message to 500 characters.
func ParseAnswer(data []byte) (Answer, error) {
	if len(data) > MaxAnswerBytes {
		return Answer{}, fmt.Errorf("the answer is %d bytes; at most %d are read", len(data), MaxAnswerBytes)
	}
	var raw struct {
		Approved *bool  `json:"approved"`
		State    string `json:"state"`
		Message  string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Answer{}, fmt.Errorf("the answer is not a JSON object: %v", err)
	}
	if raw.Approved == nil {
		return Answer{}, errors.New(`the answer lacks "approved": true or false`)
	}
	return Answer{Approved: *raw.Approved, State: clip(raw.State), Message: clip(raw.Message)}, nil
}

func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxAnswerString {
		s = s[:maxAnswerString]
	}
	return strings.ToValidUTF8(s, "")
}

// Confirmer asks change systems. The zero value uses a default HTTP client
// and the process environment.
type Confirmer struct {
	Client *http.Client
	Getenv func(string) string
}

// Ask asks the system sys about key.
func (c *Confirmer) Ask(ctx context.Context, sysName string, sys SystemSpec, key string) (Answer, error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	raw := sys.URL
	if sys.URLEnv != "" {
		raw = getenv(sys.URLEnv)
		if err := checkURL(raw); err != nil {
			return Answer{}, fmt.Errorf("change system %s: the URL in $%s: %v", sysName, sys.URLEnv, err)
		}
	}
	timeout := DefaultTimeout
	if d, err := time.ParseDuration(sys.Timeout); err == nil {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.ReplaceAll(raw, "{key}", url.PathEscape(key)), nil)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "airlock")
	if sys.TokenEnv != "" {
		tok := getenv(sys.TokenEnv)
		if tok == "" {
			return Answer{}, fmt.Errorf("change system %s: $%s is empty on the airlock server; set it to the system's API token", sysName, sys.TokenEnv)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL may hold a secret (urlEnv): say only which system failed.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Answer{}, fmt.Errorf("change system %s did not answer: %v", sysName, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return Answer{}, fmt.Errorf("change system %s: reading the answer: %v", sysName, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return Answer{}, fmt.Errorf("change system %s does not know %s (404)", sysName, key)
	case resp.StatusCode != http.StatusOK:
		return Answer{}, fmt.Errorf("change system %s answered %s", sysName, resp.Status)
	}
	a, err := ParseAnswer(body)
	if err != nil {
		return Answer{}, fmt.Errorf("change system %s: %v", sysName, err)
	}
	return a, nil
}

// Confirm asks an external change request's system for its approval now
// and records the answer (or the error), audited as actor, re-judging the
// release's promotions. The HTTP call happens outside any transaction.
func (s *Service) Confirm(ctx context.Context, actor store.Actor, name string) (*resource.Object, error) {
	obj, err := s.store.Get(ctx, Kind, name)
	if err != nil {
		return nil, fmt.Errorf("change request %s: %w", name, err)
	}
	var spec Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if spec.External == nil {
		return nil, &PolicyError{Msg: fmt.Sprintf("change request %s is approved in airlock (airlock change approve), not by an external system", name)}
	}
	sysObj, err := s.store.Get(ctx, SystemKind, spec.External.System)
	if err != nil {
		return nil, fmt.Errorf("change system %s: %w", spec.External.System, err)
	}
	var sys SystemSpec
	if err := sysObj.DecodeSpec(&sys); err != nil {
		return nil, err
	}
	answer, askErr := s.confirmer.Ask(ctx, spec.External.System, sys, spec.External.Key)
	var out *resource.Object
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, Kind, name)
		if err != nil {
			return err
		}
		var st Status
		if err := cur.DecodeStatus(&st); err != nil {
			return err
		}
		if st.Phase == Closed {
			out = cur
			return nil
		}
		prev := Confirmation{}
		if st.External != nil {
			prev = *st.External
		}
		next := prev
		next.ChangedAt = tx.Now()
		if askErr != nil {
			next.Error = askErr.Error()
		} else {
			next.Approved, next.State, next.Message, next.Error = answer.Approved, answer.State, answer.Message, ""
		}
		if st.External != nil && prev.Approved == next.Approved && prev.State == next.State && prev.Message == next.Message && prev.Error == next.Error {
			out = cur // nothing new: no write, no audit entry
			return nil
		}
		st.External = &next
		st.Phase = Judge(Policy{}, Request{Name: name, Spec: spec, Status: st}, Parties{}, tx.Now()).Phase
		if err := setStatus(cur, st); err != nil {
			return err
		}
		if out, err = tx.Update(ctx, cur); err != nil {
			return err
		}
		return s.reevaluateRelease(ctx, tx, release.Name(spec.App, spec.Version))
	})
	if err != nil {
		return nil, err
	}
	if askErr != nil {
		return out, &ConfirmError{Err: askErr}
	}
	return out, nil
}

// ConfirmError is a confirmation whose system could not be asked; the
// change request records it. The API maps it to 502.
type ConfirmError struct{ Err error }

func (e *ConfirmError) Error() string { return e.Err.Error() }
func (e *ConfirmError) Unwrap() error { return e.Err }

// ConfirmOpen asks the systems of every open external change request, one
// by one, and returns how many it asked. Errors of one system do not stop
// the others; they are recorded on each request.
func (s *Service) ConfirmOpen(ctx context.Context, actor store.Actor) (int, error) {
	objs, err := s.store.List(ctx, Kind, resource.Selector{{Key: "phase", Op: resource.Equals, Values: []string{string(Open)}}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		var spec Spec
		if err := o.DecodeSpec(&spec); err != nil || spec.External == nil {
			continue
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		n++
		var ce *ConfirmError
		if _, err := s.Confirm(ctx, actor, o.Metadata.Name); err != nil && !errors.As(err, &ce) && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
	}
	return n, nil
}
