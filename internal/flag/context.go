package flag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Limits on an OFREP evaluation request body, checked by DecodeRequest.
const (
	MaxRequestBytes   = 64 << 10
	MaxContextDepth   = 16 // nesting of objects and lists, the body's own braces included
	MaxContextEntries = 1024
)

// EvalError is an evaluation request the protocol refuses, with its OFREP
// error code (INVALID_CONTEXT or PARSE_ERROR).
type EvalError struct {
	Code string
	Msg  string
}

func (e *EvalError) Error() string { return e.Code + ": " + e.Msg }

// DecodeRequest reads the body of an OFREP evaluation request,
// {"context": {"targetingKey": "...", ...}}, reading at most
// MaxRequestBytes+1 bytes from r. An empty body, or one without context,
// is the empty context. It never panics; on failure the error is an
// *EvalError: PARSE_ERROR for a body that is not JSON or breaks a size or
// depth limit, INVALID_CONTEXT for JSON of the wrong shape (context not an
// object, targetingKey not a string).
//
// Numbers are decoded as float64; nested objects and lists are kept as
// map[string]any and []any, which no condition matches.
func DecodeRequest(r io.Reader) (Context, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return Context{}, &EvalError{ErrParse, fmt.Sprintf("read request body: %v", err)}
	}
	return DecodeRequestBytes(data)
}

// DecodeRequestBytes is DecodeRequest for a body already in memory.
func DecodeRequestBytes(data []byte) (Context, error) {
	if len(data) > MaxRequestBytes {
		return Context{}, &EvalError{ErrParse, fmt.Sprintf("request body is larger than %d bytes", MaxRequestBytes)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Context{}, nil
	}
	if d := depth(data); d > MaxContextDepth {
		return Context{}, &EvalError{ErrParse, fmt.Sprintf("request body nests objects and lists more than %d deep", MaxContextDepth)}
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(data, &body); err != nil {
		return Context{}, &EvalError{ErrParse, "request body is not a JSON object: " + err.Error()}
	}
	raw, ok := body["context"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return Context{}, nil
	}
	var attrs map[string]any
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return Context{}, &EvalError{ErrInvalidContext, "context must be a JSON object of attributes"}
	}
	if n := entries(attrs); n > MaxContextEntries {
		return Context{}, &EvalError{ErrInvalidContext, fmt.Sprintf("context has %d attributes and nested values; the limit is %d", n, MaxContextEntries)}
	}
	c := Context{Attributes: attrs}
	if tk, ok := attrs["targetingKey"]; ok {
		s, ok := tk.(string)
		if !ok && tk != nil {
			return Context{}, &EvalError{ErrInvalidContext, "targetingKey must be a string"}
		}
		c.TargetingKey = s
		delete(attrs, "targetingKey")
	}
	return c, nil
}

// depth returns how deeply data nests objects and lists, ignoring brackets
// in strings. It does not check the JSON is valid.
func depth(data []byte) int {
	d, maxD := 0, 0
	inStr, esc := false, false
	for _, b := range data {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case b == '\\':
				esc = true
			case b == '"':
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			d++
			if d > maxD {
				maxD = d
			}
		case b == '}' || b == ']':
			d--
		}
	}
	return maxD
}

// entries counts the values in v, nested ones included.
func entries(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, x := range v {
			n += entries(x) - 1
		}
		return max(n, 1)
	case []any:
		n := len(v)
		for _, x := range v {
			n += entries(x) - 1
		}
		return max(n, 1)
	}
	return 1
}
