package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// InstanceHealth is the state of one instance as the router sees it.
type InstanceHealth struct {
	Version string
	Addr    string
	// Healthy is the active check's verdict (true when checks are off).
	Healthy bool
	// Checked reports whether an active check has run at least once.
	Checked bool
	// EjectedUntil is set while passive ejection keeps the instance out.
	EjectedUntil time.Time
	// Available reports whether the instance gets traffic now.
	Available bool
	// LastError is the last active check failure, if any.
	LastError string
}

// Health returns the state of every instance of the config in force, in
// config order.
func (r *Router) Health() []InstanceHealth {
	st := r.state.Load()
	now := r.now()
	var out []InstanceHealth
	for _, p := range st.pools {
		for _, in := range p.instances {
			h := InstanceHealth{
				Version:   in.version,
				Addr:      in.addr,
				Healthy:   in.healthy.Load(),
				Checked:   in.probed.Load(),
				Available: in.available(now),
			}
			if u := in.ejectedUntil.Load(); u > now {
				h.EjectedUntil = time.Unix(0, u)
			}
			if e := in.lastErr.Load(); e != nil {
				h.LastError = *e
			}
			out = append(out, h)
		}
	}
	return out
}

// HealthyInstances returns, per version of the config in force, how many
// instances get traffic now.
func (r *Router) HealthyInstances() map[string]int {
	st := r.state.Load()
	now := r.now()
	out := make(map[string]int, len(st.pools))
	for _, p := range st.pools {
		n := 0
		for _, in := range p.instances {
			if in.available(now) {
				n++
			}
		}
		out[p.version] = n
	}
	return out
}

// startCheck starts the active health check of one instance. The caller
// holds r.mu.
func (r *Router) startCheck(in *instance, hc HealthCheck) {
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	in.done = make(chan struct{})
	go r.checkLoop(ctx, in, hc, in.done)
}

// stopCheck stops the active health check of one instance, if one runs,
// and waits for it to end.
func (r *Router) stopCheck(in *instance) {
	if in.stop == nil {
		return
	}
	in.stop()
	<-in.done
	in.stop, in.done = nil, nil
}

// checkLoop probes one instance every hc.Interval until ctx ends. An
// instance that has never passed becomes healthy on its first pass;
// afterwards the thresholds apply.
func (r *Router) checkLoop(ctx context.Context, in *instance, hc HealthCheck, done chan struct{}) {
	defer close(done)
	url := "http://" + in.addr + hc.Path
	t := time.NewTimer(0)
	defer t.Stop()
	passes, failures := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.probe(ctx, url, hc.Timeout)
		if ctx.Err() != nil {
			return
		}
		in.probed.Store(true)
		if err == nil {
			passes, failures = passes+1, 0
			first := !in.passedOnce.Swap(true)
			if !in.healthy.Load() && (first || passes >= hc.HealthyThreshold) {
				in.healthy.Store(true)
				r.logger.InfoContext(ctx, "router instance healthy", r.instanceAttrs(in)...)
			}
		} else {
			msg := err.Error()
			in.lastErr.Store(&msg)
			passes, failures = 0, failures+1
			if in.healthy.Load() && failures >= hc.UnhealthyThreshold {
				in.healthy.Store(false)
				r.logger.WarnContext(ctx, "router instance unhealthy",
					append(r.instanceAttrs(in), slog.String("error", msg))...)
			}
		}
		t.Reset(hc.Interval)
	}
}

// probe performs one health check request.
func (r *Router) probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "airlock-router-health")
	resp, err := r.health.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// passiveFailure records a 5xx or a connection failure of an instance and
// ejects it after e.ConsecutiveFailures in a row.
func (r *Router) passiveFailure(in *instance, e Ejection, now int64) {
	if e.Disabled || in.ejectedUntil.Load() > now {
		return // failures of requests sent before the ejection do not extend it
	}
	if in.fails.Add(1) < int32(e.ConsecutiveFailures) {
		return
	}
	in.fails.Store(0)
	k := in.ejections.Add(1)
	d := e.BaseDuration
	for i := int32(1); i < k && d < e.MaxDuration; i++ {
		d *= 2
	}
	d = min(d, e.MaxDuration)
	in.ejectedUntil.Store(now + int64(d))
	r.logger.Warn("router instance ejected",
		append(r.instanceAttrs(in), slog.Duration("for", d), slog.Int("ejections", int(k)))...)
}

// passiveSuccess records a non-5xx answer of an instance.
func passiveSuccess(in *instance) {
	if in.fails.Load() != 0 {
		in.fails.Store(0)
	}
	if in.ejections.Load() != 0 {
		in.ejections.Store(0)
	}
}

func (r *Router) instanceAttrs(in *instance) []any {
	return []any{
		slog.String("app", r.opts.App), slog.String("env", r.opts.Environment),
		slog.String("version", in.version), slog.String("instance", in.addr),
	}
}
