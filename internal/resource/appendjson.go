package resource

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends o as JSON to b, the same value encoding/json makes of
// it (the same fields, omitted when empty as the struct tags say, and the
// same times), without reflection: the audit log hashes the state of every
// object a write creates or updates, on the store's one writer. Labels come
// in map order, which JSON does not count. It reports false, appending
// nothing, for anything it does not write exactly as encoding/json would
// (a string with a character that needs escaping, a time outside RFC 3339),
// and for a nil o; use encoding/json then.
func (o *Object) AppendJSON(b []byte) ([]byte, bool) {
	if o == nil || !plainJSON(o.APIVersion) || !plainJSON(o.Kind) || !plainJSON(o.Metadata.Name) {
		return b, false
	}
	start := len(b)
	b = append(b, `{"apiVersion":"`...)
	b = append(b, o.APIVersion...)
	b = append(b, `","kind":"`...)
	b = append(b, o.Kind...)
	b = append(b, `","metadata":{"name":"`...)
	b = append(b, o.Metadata.Name...)
	b = append(b, '"')
	if len(o.Metadata.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		first := true
		for k, v := range o.Metadata.Labels {
			if !plainJSON(k) || !plainJSON(v) {
				return b[:start], false
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, k...)
			b = append(b, `":"`...)
			b = append(b, v...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	if o.Metadata.Revision != 0 {
		b = append(b, `,"revision":`...)
		b = strconv.AppendInt(b, o.Metadata.Revision, 10)
	}
	var ok bool
	if b, ok = appendTime(b, `,"createdAt":"`, o.Metadata.CreatedAt); !ok {
		return b[:start], false
	}
	if b, ok = appendTime(b, `,"updatedAt":"`, o.Metadata.UpdatedAt); !ok {
		return b[:start], false
	}
	b = append(b, '}')
	if b, ok = appendRaw(b, `,"spec":`, o.Spec); !ok {
		return b[:start], false
	}
	if b, ok = appendRaw(b, `,"status":`, o.Status); !ok {
		return b[:start], false
	}
	return append(b, '}'), true
}

// appendRaw appends key and raw, nothing for an empty raw (omitempty); it
// reports false for raw that is not JSON, which encoding/json refuses.
func appendRaw(b []byte, key string, raw json.RawMessage) ([]byte, bool) {
	if len(raw) == 0 {
		return b, true
	}
	if !json.Valid(raw) {
		return b, false
	}
	return append(append(b, key...), raw...), true
}

// appendTime appends key and t as encoding/json writes a time (RFC 3339
// with nanoseconds), nothing for the zero time (omitzero).
func appendTime(b []byte, key string, t time.Time) ([]byte, bool) {
	if t.IsZero() {
		return b, true
	}
	n := len(b)
	out, err := t.AppendText(append(b, key...))
	if err != nil {
		return b[:n], false
	}
	return append(out, '"'), true
}

// plainJSON reports whether s goes into a JSON string as it is, with
// encoding/json's escaping: printable ASCII without '"', '\\', '<', '>' or
// '&'.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
