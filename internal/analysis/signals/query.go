package signals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// QueryConfig is one templated PromQL query, e.g.
//
//	{"name": "error_rate", "query": "sum(rate(http_requests_total{app=\"{{app}}\",version=\"{{version}}\",code=~\"5..\"}[1m]))", "range": "5m", "step": "15s"}
//
// Label values are escaped for a double-quoted PromQL string literal, so
// placeholders belong inside "..." in the query.
type QueryConfig struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Range, when set, makes this a range query over the last Range with
	// resolution Step (default Range/60, at least 1s). Otherwise it is an
	// instant query.
	Range time.Duration `json:"range,omitempty"`
	Step  time.Duration `json:"step,omitempty"`
}

// Validate reports every problem with q, each prefixed with path (for
// example "analysis.queries[2]"), joined with errors.Join. A template
// that does not parse is reported here, at validation time.
func (q QueryConfig) Validate(path string) error {
	var errs []error
	if q.Name == "" {
		errs = append(errs, fmt.Errorf("%s.name: required", path))
	}
	if q.Query == "" {
		errs = append(errs, fmt.Errorf("%s.query: required", path))
	} else if _, err := ParseTemplate(q.Query); err != nil {
		errs = append(errs, fmt.Errorf("%s.query: %w", path, err))
	}
	if q.Range < 0 {
		errs = append(errs, fmt.Errorf("%s.range: negative", path))
	}
	if q.Step < 0 || q.Step > 0 && q.Range == 0 {
		errs = append(errs, fmt.Errorf("%s.step: needs a positive range and must not be negative", path))
	}
	if q.Step > q.Range && q.Range > 0 {
		errs = append(errs, fmt.Errorf("%s.step: %s is longer than the range %s", path, q.Step, q.Range))
	}
	return errors.Join(errs...)
}

// PromQuery is a compiled QueryConfig bound to a Client. It is safe for
// concurrent use.
type PromQuery struct {
	cfg    QueryConfig
	tmpl   *Template
	client *Client
}

// NewPromQuery validates q and binds it to c.
func NewPromQuery(c *Client, q QueryConfig) (*PromQuery, error) {
	if err := q.Validate("query"); err != nil {
		return nil, &Error{Source: q.Name, Kind: KindTemplate, Err: err}
	}
	t, _ := ParseTemplate(q.Query)
	if q.Range > 0 && q.Step == 0 {
		q.Step = max(q.Range/60, time.Second)
	}
	return &PromQuery{cfg: q, tmpl: t, client: c}, nil
}

// Name returns the query's name.
func (p *PromQuery) Name() string { return p.cfg.Name }

// Render returns the PromQL text for l.
func (p *PromQuery) Render(l Labels) string { return p.tmpl.Execute(l, EscapePromQL) }

// Fetch runs the query for l at now (the end of the range for a range
// query). It returns a result only when Result.Check passes: timeouts,
// HTTP and API errors, malformed responses, NaN samples and empty results
// all come back as an *Error whose Source is the query's name.
func (p *PromQuery) Fetch(ctx context.Context, l Labels, now time.Time) (*Result, error) {
	q := p.Render(l)
	var res *Result
	var err error
	if p.cfg.Range > 0 {
		res, err = p.client.QueryRange(ctx, q, Range{Start: now.Add(-p.cfg.Range), End: now, Step: p.cfg.Step})
	} else {
		res, err = p.client.Query(ctx, q, now)
	}
	if err == nil {
		err = res.Check()
	}
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Source = p.cfg.Name
			return nil, se
		}
		return nil, &Error{Source: p.cfg.Name, Kind: KindOf(err), Err: err}
	}
	return res, nil
}
