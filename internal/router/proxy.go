package router

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// ServeHTTP proxies one request. It picks the version (override header,
// then stickiness, then weight), falls back to another version when the
// picked one has no available instance, retries once on another instance
// when the connection fails before the request was sent, and answers 503
// only when no instance of any version is available.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	now := start.UnixNano()
	if r.clock != nil {
		now = r.clock().UnixNano()
	}
	st := r.state.Load()

	keys := st.keysOf(req.Header)
	picked, setCookie := st.choose(&keys, r.seq.Add(1)-1, now)
	if picked == nil {
		http.Error(w, st.noVersions, http.StatusServiceUnavailable)
		return
	}
	served, in := picked, picked.pick(now, nil)
	if in == nil {
		served, in = st.fallback(picked, nil, now)
		if in == nil {
			r.unavailable(w, st, picked, now)
			picked.metrics.observe(time.Since(start), true)
			return
		}
		picked.metrics.fallbacks.Add(1)
	}

	if req.Header["Upgrade"] != nil {
		// A protocol switch (WebSocket) lasts as long as the session: it
		// is counted, but kept out of the latency histogram.
		served.metrics.requests.Add(1)
		in.upgradeProxy(r).ServeHTTP(w, req)
		return
	}

	prepareRequestHeader(req, st.proto)
	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		body = &trackedBody{rc: req.Body}
		defer req.Body.Close()
	}

	fast := fastPath(req, body)
	resp, uc, err := r.send(req, in, body, fast)
	if err != nil && req.Context().Err() == nil {
		served.metrics.connFailures.Add(1)
		r.passiveFailure(in, st.ejection, now)
		if retryable(req, body, err) {
			p2, in2 := served, served.pick(now, in)
			if in2 == nil {
				p2, in2 = st.fallback(served, in, now)
				if in2 != nil {
					served.metrics.fallbacks.Add(1)
				}
			}
			if in2 != nil {
				served.metrics.retries.Add(1)
				served, in = p2, in2
				resp, uc, err = r.send(req, in, body, fast)
				if err != nil && req.Context().Err() == nil {
					served.metrics.connFailures.Add(1)
					r.passiveFailure(in, st.ejection, now)
				}
			}
		}
	}
	if err != nil {
		if req.Context().Err() != nil {
			// The client went away; nobody reads an answer.
			served.metrics.observe(time.Since(start), false)
			return
		}
		http.Error(w, fmt.Sprintf("airlock router: version %s instance %s: %v\n", in.version, in.addr, err), http.StatusBadGateway)
		served.metrics.observe(time.Since(start), true)
		return
	}

	failed := resp.StatusCode >= 500
	if failed {
		r.passiveFailure(in, st.ejection, now)
	} else {
		passiveSuccess(in)
	}

	removeHopHeaders(resp.Header)
	wh := w.Header()
	for k, vv := range resp.Header {
		wh[k] = vv
	}
	if setCookie {
		wh["Set-Cookie"] = append(wh["Set-Cookie"], served.cookie)
	}
	w.WriteHeader(resp.StatusCode)

	stream := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	cerr := r.copyBody(w, resp.Body, stream)
	if uc != nil {
		r.finish(in, uc, resp, cerr == nil)
	} else {
		resp.Body.Close()
	}
	if cerr != nil {
		if errors.Is(cerr, errBackendRead) && req.Context().Err() == nil {
			served.metrics.connFailures.Add(1)
			r.passiveFailure(in, st.ejection, now)
			served.metrics.observe(time.Since(start), true)
			// Abort the client connection: the response is truncated.
			panic(http.ErrAbortHandler)
		}
		served.metrics.observe(time.Since(start), failed)
		return
	}
	for k, vv := range resp.Trailer {
		wh[http.TrailerPrefix+k] = vv
	}
	served.metrics.observe(time.Since(start), failed)
}

// send makes one attempt to get a response from an instance.
func (r *Router) send(req *http.Request, in *instance, body *trackedBody, fast bool) (*http.Response, *upConn, error) {
	if fast {
		return r.roundTrip(in, req)
	}
	resp, err := r.transport.RoundTrip(outRequest(req, in.addr, body))
	return resp, nil, err
}

// unavailable answers 503 naming every version and how many of its
// instances are available.
func (r *Router) unavailable(w http.ResponseWriter, st *state, _ *pool, now int64) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, r.unavailableText(st, now), http.StatusServiceUnavailable)
}

// unavailableText is the body of the 503 answered when no instance of any
// version is available.
func (r *Router) unavailableText(st *state, now int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "airlock router: no healthy instance for app %q in environment %q (", r.opts.App, r.opts.Environment)
	for i, p := range st.pools {
		n := 0
		for _, in := range p.instances {
			if in.available(now) {
				n++
			}
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d/%d available", p.version, n, len(p.instances))
	}
	b.WriteString(")\n")
	return b.String()
}

// routeKeys are the parts of a request that choose a version.
type routeKeys struct {
	override    string   // first value of the override header
	hasOverride bool     // the override header is present
	cookies     []string // Cookie lines, in StickyCookie mode
	sticky      string   // first value of the sticky header, in StickyHeader mode
	hasSticky   bool
}

// keysOf returns the routing keys of a request header.
func (st *state) keysOf(h http.Header) routeKeys {
	var k routeKeys
	if st.overrideKey != "" {
		if v := h[st.overrideKey]; len(v) > 0 {
			k.override, k.hasOverride = v[0], true
		}
	}
	switch st.stickyMode {
	case StickyCookie:
		k.cookies = h["Cookie"]
	case StickyHeader:
		if v := h[st.stickyKey]; len(v) > 0 {
			k.sticky, k.hasSticky = v[0], true
		}
	}
	return k
}

// choose returns the pool a request with keys k is picked for, and
// whether the answer must set the sticky cookie. It returns nil when the
// config has no pool with a weight and the request names no version.
func (st *state) choose(k *routeKeys, seq uint64, now int64) (*pool, bool) {
	if k.hasOverride {
		if p := st.byVersion[k.override]; p != nil && p.hasAvailable(now) {
			return p, false
		}
	}
	switch st.stickyMode {
	case StickyCookie:
		if v, ok := cookieValue(k.cookies, st.stickyKey); ok {
			if p := st.byVersion[v]; p != nil && p.weight > 0 && p.hasAvailable(now) {
				return p, false
			}
		}
		return st.weighted(seq), true
	case StickyHeader:
		if k.hasSticky && k.sticky != "" {
			h := fnv64a(k.sticky) % (TotalWeight * 100)
			for _, p := range st.pools {
				if h >= p.lo && h < p.hi {
					return p, false
				}
			}
		}
	}
	return st.weighted(seq), false
}

// weighted returns the pool at position seq of the weighted schedule.
func (st *state) weighted(seq uint64) *pool {
	if len(st.schedule) == 0 {
		if len(st.pools) > 0 {
			return st.pools[0] // no weights: only reachable by fallback
		}
		return nil
	}
	return st.schedule[seq%uint64(len(st.schedule))]
}

// hasAvailable reports whether some instance of the pool is available now.
func (p *pool) hasAvailable(now int64) bool {
	for _, in := range p.instances {
		if in.available(now) {
			return true
		}
	}
	return false
}

// fallback returns an available instance of another version than not,
// preferring the heaviest, skipping skip.
func (st *state) fallback(not *pool, skip *instance, now int64) (*pool, *instance) {
	var best *pool
	var bestIn *instance
	for _, p := range st.pools {
		if p == not || (best != nil && p.weight <= best.weight) {
			continue
		}
		if in := p.pick(now, skip); in != nil {
			best, bestIn = p, in
		}
	}
	return best, bestIn
}

// retryable reports whether a failed attempt may be sent to another
// instance: the failure happened before any response byte, and either the
// request carries no body and is idempotent, or the connection was never
// made so no body byte was read.
func retryable(req *http.Request, body *trackedBody, err error) bool {
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	if body != nil {
		return dial && body.n.Load() == 0
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return dial
}

// outRequest returns the request to send to addr. It shares the inbound
// request's header (already prepared) and context.
func outRequest(in *http.Request, addr string, body *trackedBody) *http.Request {
	out := new(http.Request)
	*out = *in
	u := new(url.URL)
	*u = *in.URL
	u.Scheme = "http"
	u.Host = addr
	u.User = nil
	out.URL = u
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if body != nil {
		out.Body = body
	} else {
		out.Body = nil
		out.ContentLength = 0
	}
	out.GetBody = nil
	return out
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1).
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers and those named in
// Connection.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// prepareRequestHeader turns the inbound header into the outbound one, in
// place: hop-by-hop headers go, X-Forwarded-For gains the client address,
// X-Forwarded-Proto is set, and Go's default User-Agent is suppressed.
func prepareRequestHeader(req *http.Request, proto []string) {
	h := req.Header
	te := false
	for _, v := range h["Te"] {
		if strings.Contains(v, "trailers") {
			te = true
		}
	}
	removeHopHeaders(h)
	if te {
		h["Te"] = []string{"trailers"}
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
	}
	if h["X-Forwarded-Proto"] == nil {
		h["X-Forwarded-Proto"] = proto
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""}
	}
}

// errBackendRead marks a failure to read the response body from the
// instance (as opposed to writing it to the client).
var errBackendRead = errors.New("read from instance")

// copyBody copies the response body with a pooled buffer, flushing after
// each write when stream is set.
func (r *Router) copyBody(w http.ResponseWriter, body io.Reader, stream bool) error {
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	buf := *bp
	var fl http.Flusher
	if stream {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("%w: %w", errBackendRead, rerr)
		}
	}
}

// trackedBody passes the inbound body to the transport, counts the bytes
// read so a retry can tell whether any was sent, and ignores Close so a
// failed attempt does not close the body a retry needs.
type trackedBody struct {
	rc io.ReadCloser
	n  atomic.Int64 // the transport reads from its own goroutine
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *trackedBody) Close() error { return nil }

// cookieValue finds a cookie in Cookie header lines without allocating.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			k, v, found := strings.Cut(part, "=")
			if !found || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// fnv64a is the 64-bit FNV-1a hash of s.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
