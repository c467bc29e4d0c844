// Package resource defines airlock's Kubernetes-style objects: the envelope
// every kind shares (apiVersion, kind, metadata, spec, status), name and
// label rules, label selectors, the kind registry, and the strict decoder
// that turns YAML or JSON documents into objects with precise errors.
//
// The package knows nothing about any one kind: domain packages register
// their spec types and validation in a Scheme.
package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// APIVersion is the only API version airlock serves.
const APIVersion = "airlock.dev/v1"

// Object is one resource. Spec is what a user declares; Status is what the
// system records. Both are kept as raw JSON so the store and the transport
// never need to know a kind's Go types.
type Object struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   Metadata        `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// Metadata identifies an object and carries its bookkeeping. Revision is the
// audit sequence number of the object's last change; a client that sends a
// non-zero Revision on update asks for compare-and-swap.
type Metadata struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Revision  int64             `json:"revision,omitempty"`
	CreatedAt time.Time         `json:"createdAt,omitzero"`
	UpdatedAt time.Time         `json:"updatedAt,omitzero"`
}

// Ref names an object by kind and name, for messages and audit entries.
func (o *Object) Ref() string { return o.Kind + "/" + o.Metadata.Name }

// DeepCopy returns a copy that shares no mutable state with o.
func (o *Object) DeepCopy() *Object {
	c := *o
	if o.Metadata.Labels != nil {
		c.Metadata.Labels = make(map[string]string, len(o.Metadata.Labels))
		for k, v := range o.Metadata.Labels {
			c.Metadata.Labels[k] = v
		}
	}
	c.Spec = append(json.RawMessage(nil), o.Spec...)
	c.Status = append(json.RawMessage(nil), o.Status...)
	return &c
}

// DecodeSpec unmarshals the object's spec into v, rejecting unknown fields.
func (o *Object) DecodeSpec(v any) error {
	return strictUnmarshal(o.Spec, v)
}

// DecodeStatus unmarshals the object's status into v. An empty status leaves
// v untouched.
func (o *Object) DecodeStatus(v any) error {
	if len(o.Status) == 0 || string(o.Status) == "null" {
		return nil
	}
	return json.Unmarshal(o.Status, v)
}

// SetSpec marshals v into the object's spec.
func (o *Object) SetSpec(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode spec of %s: %w", o.Ref(), err)
	}
	o.Spec = b
	return nil
}

// SetStatus marshals v into the object's status.
func (o *Object) SetStatus(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode status of %s: %w", o.Ref(), err)
	}
	o.Status = b
	return nil
}

func strictUnmarshal(data []byte, v any) error {
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// The shapes of names, label keys and label values, written out rather
// than as regular expressions (^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ and so on,
// which the tests keep as the reference): the store checks every object a
// write touches, on its one writer, and a regexp match costs a
// microsecond or more each.

// isName reports whether s matches ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$.
func isName(s string) bool {
	return shaped(s, func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }, func(c byte) bool { return c == '.' || c == '-' })
}

// isLabelText reports whether s matches
// ^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$.
func isLabelText(s string) bool {
	return shaped(s, func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }, func(c byte) bool { return c == '.' || c == '-' || c == '_' })
}

// isLabelKey reports whether s matches an optional isName prefix and '/',
// then isLabelText.
func isLabelKey(s string) bool {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return isName(s[:i]) && isLabelText(s[i+1:])
	}
	return isLabelText(s)
}

// isLabelValue reports whether s is empty or isLabelText.
func isLabelValue(s string) bool { return s == "" || isLabelText(s) }

// shaped reports whether s is not empty, every byte of it is an end byte,
// or a middle byte anywhere but first and last.
func shaped(s string, end, middle func(byte) bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !end(c) && (i == 0 || i == len(s)-1 || !middle(c)) {
			return false
		}
	}
	return true
}

// MaxNameLength is the longest name an object may have.
const MaxNameLength = 63

// ValidateName reports whether s may name an object: 1 to 63 characters of
// lower-case letters, digits, '-' and '.', starting and ending with a letter
// or digit.
func ValidateName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("name is required")
	case len(s) > MaxNameLength:
		return fmt.Errorf("name %q is %d characters long; the limit is %d", s, len(s), MaxNameLength)
	case !isName(s) || strings.Contains(s, ".."):
		return fmt.Errorf("name %q is invalid: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. %q)", s, suggestName(s))
	}
	return nil
}

func suggestName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := b.String()
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", ".")
	}
	out = strings.Trim(out, "-.")
	if out == "" {
		return "my-name"
	}
	if len(out) > MaxNameLength {
		out = strings.Trim(out[:MaxNameLength], "-.")
	}
	if out == "" {
		return "my-name"
	}
	return out
}

// ValidateLabels checks label keys and values against the Kubernetes rules
// (keys: an optional DNS prefix of up to 253 characters and '/', then a name
// of up to 63 characters; values: up to 63 characters of letters, digits,
// '-', '_' and '.').
// When several labels are invalid, the first key in sorted order is named.
func ValidateLabels(labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := labels[k]
		prefix, name := "", k
		if i := strings.LastIndexByte(k, '/'); i >= 0 {
			prefix, name = k[:i], k[i+1:]
		}
		if len(prefix) > 253 || len(name) > 63 || !isLabelKey(k) {
			return fmt.Errorf("label key %q is invalid: use up to 63 letters, digits, '-', '_' and '.', optionally prefixed by a DNS name and '/'", k)
		}
		if len(v) > 63 || !isLabelValue(v) {
			return fmt.Errorf("label %q has invalid value %q: use up to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", k, v)
		}
	}
	return nil
}
