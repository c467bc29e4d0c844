package router

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TotalWeight is the sum the pool weights of a config must reach. Weights
// are whole percent.
const TotalWeight = 100

// DefaultOverrideHeader is the header a tester sends to pick a version.
const DefaultOverrideHeader = "X-Airlock-Version"

// DefaultStickyCookie is the cookie name when Sticky.Mode is StickyCookie and
// Sticky.Name is empty.
const DefaultStickyCookie = "airlock_version"

// Defaults of the active health check and of passive ejection.
const (
	DefaultHealthInterval       = 2 * time.Second
	DefaultHealthTimeout        = time.Second
	DefaultHealthyThreshold     = 2
	DefaultUnhealthyThreshold   = 3
	DefaultConsecutiveFailures  = 5
	DefaultBaseEjectionDuration = 5 * time.Second
	DefaultMaxEjectionDuration  = 2 * time.Minute
)

// StickyMode says how a user is kept on one version.
type StickyMode string

// The sticky modes. The empty mode is StickyNone.
const (
	StickyNone   StickyMode = "none"
	StickyCookie StickyMode = "cookie"
	StickyHeader StickyMode = "header"
)

// Config is the whole routing configuration of one router. It is validated
// and swapped in as one unit by Router.Update.
type Config struct {
	// Pools holds one pool per version. An empty list is valid: the router
	// then answers 503.
	Pools []Pool `json:"pools"`
	// Sticky keeps a user on one version.
	Sticky Sticky `json:"sticky,omitempty"`
	// OverrideHeader names the header a tester sends to reach a version
	// directly; empty means DefaultOverrideHeader, "-" disables it.
	OverrideHeader string `json:"overrideHeader,omitempty"`
	// HealthCheck configures active health checks; an empty Path disables them.
	HealthCheck HealthCheck `json:"healthCheck,omitempty"`
	// Ejection configures passive outlier ejection.
	Ejection Ejection `json:"ejection,omitempty"`
}

// Pool is the set of instances of one version and its share of traffic.
type Pool struct {
	// Version names the version; it is what the override header, the
	// sticky cookie and the metrics label carry.
	Version string `json:"version"`
	// Weight is the share of new traffic in whole percent, 0..100. The
	// weights of a config sum to 100 unless no pool has an instance.
	Weight int `json:"weight"`
	// Instances are host:port addresses served over plain HTTP.
	Instances []string `json:"instances"`
}

// Sticky keeps a user on one version.
type Sticky struct {
	// Mode is none (or empty), cookie or header.
	Mode StickyMode `json:"mode,omitempty"`
	// Name is the cookie name (default DefaultStickyCookie) or the header
	// name (required) whose value is hashed to a version.
	Name string `json:"name,omitempty"`
}

// HealthCheck configures the active HTTP health check of every instance.
type HealthCheck struct {
	// Path is requested with GET; a 2xx or 3xx answer passes. Empty
	// disables active checks: instances are then healthy unless ejected.
	Path string `json:"path,omitempty"`
	// Interval between two checks of one instance (default 2s).
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout of one check (default 1s); at most Interval.
	Timeout time.Duration `json:"timeout,omitempty"`
	// HealthyThreshold is how many consecutive passes make an unhealthy
	// instance healthy again (default 2). A new instance becomes healthy
	// on its first pass.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is how many consecutive failures make a healthy
	// instance unhealthy (default 3).
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
}

// Ejection configures passive outlier ejection: an instance that answers
// ConsecutiveFailures times in a row with a 5xx or a connection failure gets
// no traffic for BaseDuration, doubled at each further ejection up to
// MaxDuration, until it answers successfully again.
type Ejection struct {
	// Disabled turns passive ejection off.
	Disabled bool `json:"disabled,omitempty"`
	// ConsecutiveFailures before an ejection (default 5).
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// BaseDuration of the first ejection (default 5s).
	BaseDuration time.Duration `json:"baseDuration,omitempty"`
	// MaxDuration caps the back-off (default 2m).
	MaxDuration time.Duration `json:"maxDuration,omitempty"`
}

// withDefaults returns c with every zero setting replaced by its default.
// It does not touch pools.
func (c Config) withDefaults() Config {
	if c.OverrideHeader == "" {
		c.OverrideHeader = DefaultOverrideHeader
	}
	if c.Sticky.Mode == "" {
		c.Sticky.Mode = StickyNone
	}
	if c.Sticky.Mode == StickyCookie && c.Sticky.Name == "" {
		c.Sticky.Name = DefaultStickyCookie
	}
	h := &c.HealthCheck
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = min(DefaultHealthTimeout, h.Interval)
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = DefaultHealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	e := &c.Ejection
	if e.ConsecutiveFailures == 0 {
		e.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if e.BaseDuration == 0 {
		e.BaseDuration = DefaultBaseEjectionDuration
	}
	if e.MaxDuration == 0 {
		e.MaxDuration = max(DefaultMaxEjectionDuration, e.BaseDuration)
	}
	return c
}

// Validate checks the whole config after defaults are applied and returns
// every problem found, each naming its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	seen := make(map[string]int, len(c.Pools))
	sum, instances := 0, 0
	for i, p := range c.Pools {
		field := fmt.Sprintf("pools[%d]", i)
		switch {
		case p.Version == "":
			bad(field+".version", "must not be empty")
		case !validToken(p.Version):
			bad(field+".version", "%q may hold only letters, digits and . _ - + (it is sent in a cookie and a header)", p.Version)
		default:
			if j, ok := seen[p.Version]; ok {
				bad(field+".version", "%q is already the version of pools[%d]; one pool per version", p.Version, j)
			}
			seen[p.Version] = i
		}
		if p.Weight < 0 || p.Weight > TotalWeight {
			bad(field+".weight", "%d is outside 0..%d (whole percent)", p.Weight, TotalWeight)
		}
		sum += p.Weight
		addrs := make(map[string]int, len(p.Instances))
		for k, a := range p.Instances {
			f := fmt.Sprintf("%s.instances[%d]", field, k)
			if err := validAddr(a); err != nil {
				bad(f, "%v", err)
				continue
			}
			if j, ok := addrs[a]; ok {
				bad(f, "%q repeats instances[%d]", a, j)
			}
			addrs[a] = k
		}
		instances += len(p.Instances)
	}
	if instances > 0 {
		if sum != TotalWeight {
			bad("pools", "weights sum to %d; they must sum to %d (whole percent)", sum, TotalWeight)
		}
		for i, p := range c.Pools {
			if p.Weight > 0 && len(p.Instances) == 0 {
				bad(fmt.Sprintf("pools[%d].instances", i), "version %q has weight %d but no instance", p.Version, p.Weight)
			}
		}
	}

	switch c.Sticky.Mode {
	case StickyNone:
		if c.Sticky.Name != "" {
			bad("sticky.name", "set to %q but sticky.mode is none; set mode to cookie or header", c.Sticky.Name)
		}
	case StickyCookie:
		if !validToken(c.Sticky.Name) {
			bad("sticky.name", "%q is not a valid cookie name", c.Sticky.Name)
		}
	case StickyHeader:
		if c.Sticky.Name == "" {
			bad("sticky.name", "the header to hash is required when sticky.mode is header")
		} else if !validToken(c.Sticky.Name) {
			bad("sticky.name", "%q is not a valid header name", c.Sticky.Name)
		}
	default:
		bad("sticky.mode", "%q is not one of none, cookie, header", c.Sticky.Mode)
	}
	if c.OverrideHeader != "-" && !validToken(c.OverrideHeader) {
		bad("overrideHeader", "%q is not a valid header name (use \"-\" to disable)", c.OverrideHeader)
	}

	h := c.HealthCheck
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		bad("healthCheck.path", "%q must start with /", h.Path)
	}
	if h.Interval < 0 {
		bad("healthCheck.interval", "%v must be positive", h.Interval)
	}
	if h.Timeout < 0 {
		bad("healthCheck.timeout", "%v must be positive", h.Timeout)
	} else if h.Timeout > h.Interval && h.Interval > 0 {
		bad("healthCheck.timeout", "%v is longer than healthCheck.interval %v", h.Timeout, h.Interval)
	}
	if h.HealthyThreshold < 0 {
		bad("healthCheck.healthyThreshold", "%d must be at least 1", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 0 {
		bad("healthCheck.unhealthyThreshold", "%d must be at least 1", h.UnhealthyThreshold)
	}

	e := c.Ejection
	if e.ConsecutiveFailures < 0 {
		bad("ejection.consecutiveFailures", "%d must be at least 1", e.ConsecutiveFailures)
	}
	if e.BaseDuration < 0 {
		bad("ejection.baseDuration", "%v must be positive", e.BaseDuration)
	}
	if e.MaxDuration < e.BaseDuration {
		bad("ejection.maxDuration", "%v is shorter than ejection.baseDuration %v", e.MaxDuration, e.BaseDuration)
	}
	return errors.Join(errs...)
}

// validToken reports whether s is a non-empty RFC 7230 token made of
// letters, digits and . _ - +, safe in a header name, a cookie name and a
// cookie value.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.' || b == '_' || b == '-' || b == '+':
		default:
			return false
		}
	}
	return true
}

// validAddr checks a host:port instance address.
func validAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return fmt.Errorf("%q has an invalid host", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has port %q outside 1..65535", a, port)
	}
	return nil
}

// canonicalHeader returns the canonical form of a header name, or "" for
// the disabled marker "-".
func canonicalHeader(name string) string {
	if name == "-" || name == "" {
		return ""
	}
	return http.CanonicalHeaderKey(name)
}
