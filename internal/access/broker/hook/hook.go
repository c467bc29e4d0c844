// Package hook provides two brokers for systems without a built-in one:
// "exec" runs the operator's command to grant and revoke access, and
// "webhook" POSTs the grant to the operator's HTTP endpoint. Both read
// the same answer to a grant, a JSON object
//
//	{"credential": {"username": "...", "password": "..."}, "handle": "..."}
//
// parsed by ParseAnswer. The credential is what the requester receives
// once; the handle is stored in the clear and given back at revocation.
//
// A grant's output can hold the credential, so no error of this package
// quotes it: an exec error quotes only the end of the command's stderr,
// a webhook error only the start of a non-2xx body.
//
// Importing the package registers both types with package broker.
package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// Limits shared by both brokers.
const (
	// MaxAnswerBytes bounds a grant's answer: the command's stdout or the
	// endpoint's body.
	MaxAnswerBytes = 64 << 10
	// MaxHandleBytes bounds Issued.Handle.
	MaxHandleBytes = 256
	// MaxCredentialKeyBytes bounds one key of Issued.Credential.
	MaxCredentialKeyBytes = 128
	// MinTimeout and MaxTimeout bound either broker's timeout.
	MinTimeout = time.Second
	MaxTimeout = 5 * time.Minute
)

func init() {
	broker.Register("exec", func(config json.RawMessage, env broker.Env) (broker.Broker, error) {
		cfg, err := DecodeExecConfig(config)
		if err != nil {
			return nil, err
		}
		return NewExec(cfg, env)
	})
	broker.RegisterValidator("exec", func(config json.RawMessage) error {
		_, err := DecodeExecConfig(config)
		return err
	})
	broker.Register("webhook", func(config json.RawMessage, env broker.Env) (broker.Broker, error) {
		cfg, err := DecodeWebhookConfig(config)
		if err != nil {
			return nil, err
		}
		return NewWebhook(cfg, env)
	})
	broker.RegisterValidator("webhook", func(config json.RawMessage) error {
		_, err := DecodeWebhookConfig(config)
		return err
	})
}

// The messages of ParseAnswer. None quotes the answer (it may hold a
// credential); the only variable parts are numbers.
var (
	errAnswerNotObject = errors.New(`the answer is not a JSON object {"credential": {...}, "handle": "..."}`)
	errAnswerField     = errors.New(`the answer has a field other than "credential" and "handle" (names are case-sensitive)`)
	errNoCredential    = errors.New(`the answer lacks "credential": an object of strings, {} when there is nothing to hand over`)
	errCredentialType  = errors.New(`"credential" must be an object whose values are all strings`)
	errCredentialKey   = fmt.Errorf(`a key of "credential" is empty or longer than %d bytes`, MaxCredentialKeyBytes)
	errHandleType      = errors.New(`"handle" must be a string`)
	errHandleText      = errors.New(`"handle" must be printable UTF-8 text without control characters: it is stored and shown in the clear`)
)

// ParseAnswer reads the answer to a grant: one JSON object with
// "credential" (required; an object of string values, {} when the access
// needs no secret) and "handle" (optional; a string of at most
// MaxHandleBytes printable bytes, never a secret). Surrounding white
// space is allowed; other fields, other value types and anything after
// the object are refused. It reads at most MaxAnswerBytes.
//
// Its errors never quote the answer, which may hold the credential: they
// say what is wrong and, for syntax errors, at which byte.
func ParseAnswer(data []byte) (broker.Issued, error) {
	if len(data) > MaxAnswerBytes {
		return broker.Issued{}, fmt.Errorf("the answer is %d bytes; at most %d are read", len(data), MaxAnswerBytes)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return broker.Issued{}, fmt.Errorf("the answer is not valid JSON (at byte %d of %d)", se.Offset, len(data))
		}
		return broker.Issued{}, errAnswerNotObject
	}
	if fields == nil { // null
		return broker.Issued{}, errAnswerNotObject
	}
	for k := range fields {
		if k != "credential" && k != "handle" {
			return broker.Issued{}, errAnswerField
		}
	}
	raw, ok := fields["credential"]
	if !ok {
		return broker.Issued{}, errNoCredential
	}
	var cred map[string]string
	if err := json.Unmarshal(raw, &cred); err != nil || cred == nil {
		return broker.Issued{}, errCredentialType
	}
	for k := range cred {
		if k == "" || len(k) > MaxCredentialKeyBytes {
			return broker.Issued{}, errCredentialKey
		}
	}
	var handle string
	if raw, ok := fields["handle"]; ok {
		if err := json.Unmarshal(raw, &handle); err != nil {
			return broker.Issued{}, errHandleType
		}
	}
	if len(handle) > MaxHandleBytes {
		return broker.Issued{}, fmt.Errorf(`"handle" is %d bytes; at most %d are allowed`, len(handle), MaxHandleBytes)
	}
	if !printable(handle) {
		return broker.Issued{}, errHandleText
	}
	return broker.Issued{Credential: cred, Handle: handle}, nil
}

// printable reports whether s is valid UTF-8 without control characters.
// (encoding/json turns invalid UTF-8 into U+FFFD, which is refused too:
// a handle must come back exactly as it was given.)
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// decodeFields splits a broker configuration into its fields, refusing a
// field not in known and naming it.
func decodeFields(typ string, config json.RawMessage, known ...string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(config)) == 0 {
		return nil, fmt.Errorf("the %s broker needs a configuration with %s", typ, strings.Join(known, ", "))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("the %s broker's configuration must be an object with %s", typ, strings.Join(known, ", "))
	}
	for k := range fields {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("%s: unknown field %q; the fields are %s", typ, k, strings.Join(known, ", "))
		}
	}
	return fields, nil
}

// decodeString reads the string field name; absent or null gives "".
func decodeString(typ string, fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s.%s must be a string", typ, name)
	}
	return s, nil
}

// parseTimeout reads a timeout between MinTimeout and MaxTimeout; "" is
// def.
func parseTimeout(typ, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinTimeout || d > MaxTimeout {
		return 0, fmt.Errorf("%s.timeout %q must be a duration from 1s to 5m, e.g. %s", typ, s, def)
	}
	return d, nil
}

// rfc3339 formats t in UTC to the second; the zero time is "".
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
