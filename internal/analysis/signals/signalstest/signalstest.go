// Package signalstest holds hand-written fakes for testing code that uses
// package signals: a controllable Clock and a fake Prometheus HTTP API
// server. It does not import signals.
package signalstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"
)

// Clock is a fake clock. Time moves only with Advance. It is safe for
// concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a clock set to now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock has been advanced
// by d or more.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock forward by d and fires every After that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// BlockUntil waits until n or more callers wait on After: the test signal
// that a loop has gone to sleep. It gives up after 10 s of real time
// and reports false.
func (c *Clock) BlockUntil(n int) bool {
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// Answer is what the fake Prometheus sends for one query.
type Answer struct {
	Status int    // HTTP status; default 200
	Body   string // raw body, sent as is
	// Delay holds the answer back; the fake gives up early when the
	// client goes away.
	Delay time.Duration
	// Started, when set, receives a value (without blocking) as the
	// request arrives: the test signal that a query is in flight.
	Started chan<- struct{}
}

// Prometheus is a fake Prometheus HTTP API: an httptest.Server that
// answers /api/v1/query and /api/v1/query_range with a fixed Answer per
// query string, read from the form (GET or POST) as Prometheus does.
// Unknown queries get a bad_data error envelope with status 400. It
// records every request's form and Authorization header.
type Prometheus struct {
	*httptest.Server

	mu       sync.Mutex
	answers  map[string]Answer
	requests []Request
}

// Request is one request the fake received.
type Request struct {
	Path          string
	Method        string
	Query         string
	Form          map[string]string
	Authorization string
}

// NewPrometheus starts a fake Prometheus; the caller must Close it.
func NewPrometheus() *Prometheus {
	p := &Prometheus{answers: map[string]Answer{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

// Answer sets the answer to query on both endpoints.
func (p *Prometheus) Answer(query string, a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[query] = a
}

// Requests returns the requests received so far.
func (p *Prometheus) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

func (p *Prometheus) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" && r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	form := map[string]string{}
	keys := make([]string, 0, len(r.Form))
	for k := range r.Form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		form[k] = r.Form.Get(k)
	}
	q := r.Form.Get("query")
	p.mu.Lock()
	p.requests = append(p.requests, Request{Path: r.URL.Path, Method: r.Method, Query: q, Form: form, Authorization: r.Header.Get("Authorization")})
	a, ok := p.answers[q]
	p.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("fake prometheus has no answer for query %q", q))
		return
	}
	if a.Started != nil {
		select {
		case a.Started <- struct{}{}:
		default:
		}
	}
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(a.Body))
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}

// Vector returns a success body with a vector result of one series per
// element of values, labelled {series="<i>"}, at unix time ts. Values are
// written as given ("1.5", "NaN", "+Inf").
func Vector(ts float64, values ...string) string {
	out := `{"status":"success","data":{"resultType":"vector","result":[`
	for i, v := range values {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf(`{"metric":{"series":"%d"},"value":[%g,%q]}`, i, ts, v)
	}
	return out + `]}}`
}

// ErrorBody returns Prometheus' error envelope.
func ErrorBody(typ, msg string) string {
	b, _ := json.Marshal(map[string]string{"status": "error", "errorType": typ, "error": msg})
	return string(b)
}
