package signals

import (
	"context"
	"errors"
	"fmt"
)

// Kind says why a signal could not be obtained.
type Kind string

// The kinds of signal errors. Every one of them counts as an error in a
// Tracker except KindCanceled.
const (
	KindConfig    Kind = "config"    // invalid configuration, missing credentials
	KindTemplate  Kind = "template"  // a template that does not parse or render
	KindTimeout   Kind = "timeout"   // the request did not finish in time
	KindDNS       Kind = "dns"       // the host name did not resolve
	KindRefused   Kind = "refused"   // the connection was refused
	KindNetwork   Kind = "network"   // another transport failure
	KindHTTP      Kind = "http"      // an unexpected HTTP status without an API error body
	KindAPI       Kind = "api"       // Prometheus answered with its error envelope
	KindMalformed Kind = "malformed" // the response is not valid Prometheus API JSON
	KindTooLarge  Kind = "too_large" // the response exceeds a size, series or sample limit
	KindNaN       Kind = "nan"       // a sample is NaN
	KindEmpty     Kind = "empty"     // the result holds no series or no samples
	KindStatus    Kind = "status"    // a probe got a status it does not expect
	KindBody      Kind = "body"      // a probe's body did not match
	KindCanceled  Kind = "canceled"  // the caller canceled the context
)

// Error is a failure to obtain a signal. Source names the query or probe,
// Kind classifies the failure, and Err carries the cause.
type Error struct {
	Source string
	Kind   Kind
	// Status is the HTTP status when there was one, else 0.
	Status int
	// APIType is Prometheus' errorType for KindAPI, e.g. "bad_data".
	APIType string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Source != "" {
		return fmt.Sprintf("signal %q: %s: %s", e.Source, e.Kind, msg)
	}
	return fmt.Sprintf("%s: %s", e.Kind, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err: the Kind of the first *Error in its
// chain, KindCanceled for context.Canceled, KindTimeout for
// context.DeadlineExceeded, and KindNetwork for anything else. It returns
// "" for a nil error.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	return KindNetwork
}

func errorf(source string, kind Kind, format string, args ...any) *Error {
	return &Error{Source: source, Kind: kind, Err: fmt.Errorf(format, args...)}
}
