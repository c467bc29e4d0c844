package router

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Serve runs the router's own HTTP/1.1 connection loop (this file). The requests that
// make up nearly all traffic, GET, HEAD and OPTIONS without a body, in
// HTTP/1.1 origin form with one valid Host, are parsed, routed and relayed
// on the connection's goroutine: the request head is rewritten into a
// byte buffer, the response head filtered into the client's buffered
// writer, the body copied between the two buffers, and nothing is
// allocated per request in the default configuration. A connection whose
// next request is anything else (a body, an Upgrade, HTTP/1.0, a head that
// does not fit the buffer or does not parse) is handed, with the bytes
// already read, to a net/http server running ServeHTTP, which keeps it to
// the end; so every request gets the same routing and the same answers.

const (
	idleTimeout       = 2 * time.Minute  // keep-alive wait for the next request
	readHeaderTimeout = 10 * time.Second // a started request head must arrive in this
	// watchAfter bounds how long a response may take before the
	// connection starts watching the client, so that a client that goes
	// away cancels the upstream request (the watch costs a goroutine;
	// fast answers never need it). The watch starts between 0 and
	// watchAfter into a wait (see waitUpstream).
	watchAfter     = 50 * time.Millisecond
	clientBufSize  = 8 << 10
	upstreamBuffer = 16 << 10
)

// Connection states for Shutdown.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

var (
	errClientGone       = errors.New("client went away")
	errMalformedHead    = errors.New("malformed HTTP response head")
	errHeadTooLarge     = errors.New("response head larger than 1 MB")
	errUnsupportedTE    = errors.New("unsupported Transfer-Encoding in response")
	errBadChunk         = errors.New("malformed chunked response body")
	errBadContentLength = errors.New("invalid Content-Length in response")
)

// server is the part of a Router that serves listeners.
type server struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	fallback  *http.Server
	handoff   *connListener
	shutting  atomic.Bool
	handoffs  atomic.Uint64 // connections given to fallback

	readers sync.Pool // *bufio.Reader of clientBufSize
	writers sync.Pool // *[]byte of clientBufSize
	date    atomic.Pointer[dateLine]
}

// dateLine is a cached "Date: ...\r\n" header line of one second.
type dateLine struct {
	sec  int64
	line []byte
}

// Serve accepts connections on ln and serves them with the router until
// Shutdown, and then returns http.ErrServerClosed; it returns the accept
// error when ln fails or is closed otherwise. It may run on several
// listeners at once.
func (r *Router) Serve(ln net.Listener) error {
	s := &r.srv
	s.mu.Lock()
	if r.isClosed() || s.shutting.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.fallback == nil {
		s.handoff = newConnListener(ln.Addr())
		s.fallback = &http.Server{
			Handler:           r,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug),
		}
		go s.fallback.Serve(s.handoff)
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*serverConn]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &serverConn{r: r, nc: nc}
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			nc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// shutdown stops the connection loops: listeners close, idle connections
// close, busy ones close after their current answer. It returns when none
// is left, or with an error when done is closed first.
func (s *server) shutdown(done <-chan struct{}) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			if c.state.CompareAndSwap(connIdle, connClosed) {
				c.nc.Close()
			}
		}
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-done:
			return errors.New("connections still busy when the shutdown context ended")
		case <-t.C:
		}
	}
}

// dateHeader returns the Date header line of now, cached per second.
func (s *server) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateLine{sec: sec}
	d.line = append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	d.line = append(d.line, "\r\n"...)
	s.date.Store(d)
	return d.line
}

// serverConn is one client connection served by the fast loop.
type serverConn struct {
	r   *Router
	nc  net.Conn
	rio rawIO
	br  *bufio.Reader // reads c.rio
	bw  outBuf
	ip  []byte // client address for X-Forwarded-For; nil when unknown
	// readBy is the read deadline set on nc (zero: none). The idle
	// deadline is moved on about once a second, not at every request.
	readBy time.Time
	state  atomic.Int32

	// The request being served.
	head       bool // HEAD request
	closeAfter bool // the client asked to close
	out        []byte
	fields     []field
	tokens     [][]byte
	xff        [][]byte
	cookies    []string
	keys       routeKeys

	// The response being relayed.
	rh      respHead
	rfields []field

	// Watching the client while an answer is slow.
	watching bool
	watched  chan struct{}
	gone     atomic.Bool
	cur      atomic.Pointer[upConn]
}

// field is one header field; both slices alias a read buffer.
type field struct {
	name, value []byte
	drop        bool
}

func (c *serverConn) serve() {
	s := &c.r.srv
	c.rio = newRawIO(c.nc)
	c.br, _ = s.readers.Get().(*bufio.Reader)
	if c.br == nil {
		c.br = bufio.NewReaderSize(&c.rio, clientBufSize)
	} else {
		c.br.Reset(&c.rio)
	}
	c.bw.nc = c.nc
	if b, ok := s.writers.Get().(*[]byte); ok {
		c.bw.buf = (*b)[:0]
	} else {
		c.bw.buf = make([]byte, 0, clientBufSize)
	}
	if h, _, err := net.SplitHostPort(c.nc.RemoteAddr().String()); err == nil {
		c.ip = []byte(h)
	}
	handedOff := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		b := c.bw.buf[:0]
		c.bw = outBuf{}
		s.writers.Put(&b)
		if !handedOff {
			c.nc.Close()
			c.br.Reset(nil)
			s.readers.Put(c.br)
		}
	}()
	for {
		if c.br.Buffered() == 0 {
			if c.bw.err != nil {
				return
			}
			// The answer still buffered goes out with the read that
			// waits for the next request.
			if now := time.Now(); c.readBy.Sub(now) < idleTimeout-time.Second {
				c.setReadDeadline(now.Add(idleTimeout))
			}
			c.rio.pending = c.bw.buf
			_, err := c.br.Peek(1)
			c.rio.pending, c.bw.buf = nil, c.bw.buf[:0]
			if err != nil {
				return
			}
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return // Shutdown closed it
		}
		n, err := c.readHead()
		if err != nil {
			return
		}
		head, _ := c.br.Peek(n)
		if n == 0 || !c.parseRequest(head) {
			if c.bw.Flush() != nil || s.shutting.Load() {
				return
			}
			c.setReadDeadline(time.Time{})
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.handoffs.Add(1)
			handedOff = s.handoff.deliver(&bufConn{Conn: c.nc, r: c.br})
			return
		}
		c.br.Discard(n)
		keep := c.r.serveFast(c)
		if !keep || c.closeAfter || s.shutting.Load() {
			c.bw.Flush()
			return
		}
		if !c.state.CompareAndSwap(connActive, connIdle) {
			c.bw.Flush()
			return
		}
	}
}

// readHead waits until the client's buffer holds a whole request head and
// returns its length, or 0 when it cannot fit the buffer.
func (c *serverConn) readHead() (int, error) {
	deadline := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if n := headEnd(buf); n > 0 {
			return n, nil
		}
		if len(buf) >= c.br.Size() {
			return 0, nil
		}
		if !deadline {
			c.setReadDeadline(time.Now().Add(readHeaderTimeout))
			deadline = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// headEnd returns the length of the head at the start of b (through the
// empty line that ends it, CRLF or bare LF), or 0 when it is incomplete.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return 0
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

// cutLine returns the first line of b without its line end, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	i := indexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parseFields parses header lines up to the empty line into fields. It
// reports false for obsolete line folding, a missing colon, an invalid
// name or a value with control characters.
func parseFields(b []byte, fields []field) ([]field, bool) {
	for {
		var line []byte
		line, b = cutLine(b)
		if len(line) == 0 {
			return fields, true
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fields, false
		}
		i := indexByte(line, ':')
		if i <= 0 || !isToken(line[:i]) {
			return fields, false
		}
		v := line[i+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		for _, x := range v {
			if x < ' ' && x != '\t' || x == 0x7f {
				return fields, false
			}
		}
		fields = append(fields, field{name: line[:i], value: v})
	}
}

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	for _, x := range b {
		switch {
		case 'a' <= x && x <= 'z', 'A' <= x && x <= 'Z', '0' <= x && x <= '9':
		case x == '!' || x == '#' || x == '$' || x == '%' || x == '&' || x == '\'' || x == '*' ||
			x == '+' || x == '-' || x == '.' || x == '^' || x == '_' || x == '`' || x == '|' || x == '~':
		default:
			return false
		}
	}
	return true
}

// eqFold reports whether b equals the ASCII string s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// eachToken calls f with each comma-separated, trimmed token of v.
func eachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := indexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if len(t) > 0 {
			f(t)
		}
	}
}

// hopByHop reports whether a field name is one of hopHeaders.
func hopByHop(name []byte) bool {
	for _, h := range hopHeaders {
		if eqFold(name, h) {
			return true
		}
	}
	return false
}

// parseRequest parses a request head and, when the fast path takes it,
// builds the upstream request head in c.out and the routing keys. It
// reports false for anything net/http should handle.
func (c *serverConn) parseRequest(h []byte) bool {
	line, rest := cutLine(h)
	sp := indexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	method, line := line[:sp], line[sp+1:]
	sp = indexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	target, proto := line[:sp], line[sp+1:]
	if string(proto) != "HTTP/1.1" || target[0] != '/' {
		return false
	}
	for _, x := range target {
		if x <= ' ' || x >= 0x7f {
			return false
		}
	}
	c.head = false
	switch string(method) {
	case http.MethodGet, http.MethodOptions:
	case http.MethodHead:
		c.head = true
	default:
		return false
	}
	var ok bool
	if c.fields, ok = parseFields(rest, c.fields[:0]); !ok {
		return false
	}

	st := c.r.state.Load()
	c.keys = routeKeys{}
	c.closeAfter = false
	c.tokens, c.xff, c.cookies = c.tokens[:0], c.xff[:0], c.cookies[:0]
	var host []byte
	hosts, te, xfp := 0, false, false
	for i := range c.fields {
		f := &c.fields[i]
		n := f.name
		switch {
		case eqFold(n, "Host"):
			host, hosts, f.drop = f.value, hosts+1, true
		case eqFold(n, "Content-Length"):
			if string(f.value) != "0" {
				return false
			}
			f.drop = true
		case eqFold(n, "Transfer-Encoding"), eqFold(n, "Upgrade"), eqFold(n, "Expect"):
			return false
		case eqFold(n, "Connection"):
			f.drop = true
			eachToken(f.value, func(t []byte) {
				if eqFold(t, "close") {
					c.closeAfter = true
				}
				c.tokens = append(c.tokens, t)
			})
		case eqFold(n, "Te"):
			f.drop = true
			te = te || containsFold(f.value, "trailers")
		case eqFold(n, "X-Forwarded-For"):
			f.drop = c.ip != nil
			c.xff = append(c.xff, f.value)
		default:
			f.drop = hopByHop(n)
			switch {
			case eqFold(n, "X-Forwarded-Proto"):
				xfp = true
			case eqFold(n, "Cookie"):
				if st.stickyMode == StickyCookie {
					c.cookies = append(c.cookies, string(f.value))
				}
			case st.overrideKey != "" && eqFold(n, st.overrideKey):
				if !c.keys.hasOverride {
					c.keys.override, c.keys.hasOverride = string(f.value), true
				}
			case st.stickyMode == StickyHeader && eqFold(n, st.stickyKey):
				if !c.keys.hasSticky {
					c.keys.sticky, c.keys.hasSticky = string(f.value), true
				}
			}
		}
	}
	if hosts != 1 || !validHost(host) {
		return false
	}
	if len(c.tokens) > 0 {
		for i := range c.fields {
			for _, t := range c.tokens {
				if eqFold(c.fields[i].name, string(t)) {
					c.fields[i].drop = true
				}
			}
		}
	}
	c.keys.cookies = c.cookies

	out := append(c.out[:0], method...)
	out = append(out, ' ')
	out = append(out, target...)
	out = append(out, " HTTP/1.1\r\nHost: "...)
	out = append(out, host...)
	out = append(out, "\r\n"...)
	for _, f := range c.fields {
		if f.drop {
			continue
		}
		out = append(out, f.name...)
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	if te {
		out = append(out, "Te: trailers\r\n"...)
	}
	if c.ip != nil {
		out = append(out, "X-Forwarded-For: "...)
		for _, v := range c.xff {
			out = append(out, v...)
			out = append(out, ", "...)
		}
		out = append(out, c.ip...)
		out = append(out, "\r\n"...)
	}
	if !xfp {
		out = append(out, "X-Forwarded-Proto: http\r\n"...)
	}
	c.out = append(out, "\r\n"...)
	return true
}

// containsFold reports whether v holds the lower-case token s in any case.
func containsFold(v []byte, s string) bool {
	found := false
	eachToken(v, func(t []byte) {
		if i := indexByte(t, ';'); i >= 0 {
			t = t[:i]
		}
		for len(t) > 0 && t[len(t)-1] == ' ' {
			t = t[:len(t)-1]
		}
		found = found || eqFold(t, s)
	})
	return found
}

// validHost reports whether a Host value is one net/http would accept.
func validHost(h []byte) bool {
	for _, x := range h {
		switch {
		case 'a' <= x && x <= 'z', 'A' <= x && x <= 'Z', '0' <= x && x <= '9':
		case x == '-' || x == '.' || x == '_' || x == '~' || x == ':' || x == '[' || x == ']' || x == '%' ||
			x == '!' || x == '$' || x == '&' || x == '\'' || x == '(' || x == ')' || x == '*' || x == '+' ||
			x == ',' || x == ';' || x == '=' || x == '@':
		default:
			return false
		}
	}
	return true
}

// serveFast routes and proxies the request parsed into c. It reports
// whether the client connection may serve another request.
func (r *Router) serveFast(c *serverConn) bool {
	start := time.Now()
	now := start.UnixNano()
	if r.clock != nil {
		now = r.clock().UnixNano()
	}
	st := r.state.Load()
	c.gone.Store(false)

	picked, setCookie := st.choose(&c.keys, r.seq.Add(1)-1, now)
	if picked == nil {
		return c.writeError(http.StatusServiceUnavailable, st.noVersions, false)
	}
	served, in := picked, picked.pick(now, nil)
	if in == nil {
		served, in = st.fallback(picked, nil, now)
		if in == nil {
			keep := c.writeError(http.StatusServiceUnavailable, r.unavailableText(st, now), true)
			picked.metrics.observe(time.Since(start), true)
			return keep
		}
		picked.metrics.fallbacks.Add(1)
	}

	uc, err := c.exchange(r, in)
	if err != nil && !c.gone.Load() {
		served.metrics.connFailures.Add(1)
		r.passiveFailure(in, st.ejection, now)
		if !errors.Is(err, errHeadTooLarge) {
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
				uc, err = c.exchange(r, in)
				if err != nil && !c.gone.Load() {
					served.metrics.connFailures.Add(1)
					r.passiveFailure(in, st.ejection, now)
				}
			}
		}
	}
	if err != nil {
		c.stopWatch()
		if c.gone.Load() {
			served.metrics.observe(time.Since(start), false)
			return false
		}
		keep := c.writeError(http.StatusBadGateway, "airlock router: version "+in.version+" instance "+in.addr+": "+err.Error()+"\n", false)
		served.metrics.observe(time.Since(start), true)
		return keep
	}

	failed := c.rh.status >= 500
	if failed {
		r.passiveFailure(in, st.ejection, now)
	} else {
		passiveSuccess(in)
	}
	body := c.writeResponseHead(served, setCookie, start)
	uc.br.Discard(c.rh.headLen)
	err = c.relayBody(uc, body)
	c.stopWatch()
	complete := err == nil
	if complete && !c.rh.closeConn && body != bodyUntilClose && uc.br.Buffered() == 0 && !c.gone.Load() {
		in.conns.put(uc)
	} else {
		uc.nc.Close()
	}
	switch {
	case err == nil:
		served.metrics.observe(time.Since(start), failed)
		return c.bw.err == nil
	case errors.Is(err, errBackendRead) && !c.gone.Load():
		served.metrics.connFailures.Add(1)
		r.passiveFailure(in, st.ejection, now)
		served.metrics.observe(time.Since(start), true)
		return false // the answer is truncated: close the client connection
	default:
		served.metrics.observe(time.Since(start), failed)
		return false
	}
}

// exchange sends c.out to the instance over a pooled or new connection
// and reads the response head into c.rh, retrying once on a new
// connection when a pooled one turns out to be dead.
func (c *serverConn) exchange(r *Router, in *instance) (*upConn, error) {
	for attempt := 0; ; attempt++ {
		uc := in.conns.get()
		if uc == nil {
			nc, err := r.dialer.Dial("tcp", in.addr)
			if err != nil {
				return nil, err
			}
			uc = newUpConn(nc)
		}
		if c.watching {
			uc.setReadDeadline(time.Time{}) // a pooled one may keep an old one
		}
		c.cur.Store(uc)
		if c.gone.Load() {
			uc.nc.Close()
			return nil, errClientGone
		}
		uc.rio.pending = c.out // written by the read that waits for the answer
		err := c.readResponseHead(uc)
		uc.rio.pending = nil
		if err == nil {
			return uc, nil
		}
		uc.nc.Close()
		if uc.reuse && attempt == 0 && !c.gone.Load() && !errors.Is(err, errHeadTooLarge) {
			continue
		}
		if c.gone.Load() {
			err = errClientGone
		}
		return nil, err
	}
}

// waitUpstream blocks until uc.br has at least one byte more buffered. The
// client's pending output is flushed first. An answer slower than
// watchAfter starts watching the client, which aborts the wait when the
// client goes away.
func (c *serverConn) waitUpstream(uc *upConn) error {
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			c.gone.Store(true)
			return errClientGone
		}
	}
	want := uc.br.Buffered() + 1
	if !c.watching {
		// The deadline is renewed when it has passed, so the watch
		// starts between 0 and watchAfter into a wait, and a busy
		// connection does not move a timer at every request.
		if now := time.Now(); uc.readBy.Before(now) {
			uc.setReadDeadline(now.Add(watchAfter))
		}
		_, err := uc.br.Peek(want)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		uc.setReadDeadline(time.Time{})
		c.startWatch()
	}
	_, err := uc.br.Peek(want)
	if err != nil && c.gone.Load() {
		return errClientGone
	}
	return err
}

// startWatch reads from the client in the background until stopWatch;
// EOF or an error means the client went away, and the upstream read in
// progress is aborted. Bytes that arrive (a pipelined request) stay in
// c.br. The caller must not use c.br until stopWatch.
func (c *serverConn) startWatch() {
	c.watching = true
	c.watched = make(chan struct{})
	c.setReadDeadline(time.Time{})
	go func() {
		defer close(c.watched)
		if c.br.Buffered() >= c.br.Size() {
			return
		}
		_, err := c.br.Peek(c.br.Buffered() + 1)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, bufio.ErrBufferFull) {
			c.gone.Store(true)
			if uc := c.cur.Load(); uc != nil {
				uc.nc.SetReadDeadline(time.Unix(1, 0))
			}
		}
	}()
}

// stopWatch ends the background read of startWatch, if one runs.
func (c *serverConn) stopWatch() {
	if !c.watching {
		return
	}
	c.nc.SetReadDeadline(time.Unix(1, 0))
	<-c.watched
	c.setReadDeadline(time.Time{})
	c.watching = false
}

// Body framings of a response.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

// respHead is the parsed head of an upstream response.
type respHead struct {
	status    int
	statusTxt []byte // "200 OK"
	length    int64  // -1 when not given
	chunked   bool
	closeConn bool // the upstream connection cannot be reused
	hasDate   bool
	headLen   int // bytes of the head still in the upstream buffer
}

// readResponseHead reads the response head (skipping 1xx answers) and
// parses it into c.rh and c.rfields, which alias uc.br's buffer until
// c.rh.headLen bytes are discarded.
func (c *serverConn) readResponseHead(uc *upConn) error {
	for {
		var head []byte
		for {
			buf, _ := uc.br.Peek(uc.br.Buffered())
			if n := headEnd(buf); n > 0 {
				head = buf[:n]
				c.rh.headLen = n
				break
			}
			if len(buf) >= uc.br.Size() {
				big, err := readBigHead(uc.br)
				if err != nil {
					return err
				}
				head = big
				c.rh.headLen = 0
				break
			}
			if err := c.waitUpstream(uc); err != nil {
				return err
			}
		}
		if err := c.parseResponse(head); err != nil {
			return err
		}
		if c.rh.status >= 100 && c.rh.status < 200 {
			if c.rh.status == http.StatusSwitchingProtocols {
				return errors.New("unexpected 101 Switching Protocols to a request without Upgrade")
			}
			uc.br.Discard(c.rh.headLen)
			continue
		}
		return nil
	}
}

// readBigHead reads a head longer than the buffer into a new slice, up to
// maxResponseHead.
func readBigHead(br *bufio.Reader) ([]byte, error) {
	var big []byte
	for {
		line, err := br.ReadSlice('\n')
		big = append(big, line...)
		if len(big) > maxResponseHead {
			return nil, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, errors.Join(errMalformedHead, err)
		}
		if n := headEnd(big); n > 0 {
			return big, nil
		}
	}
}

func (c *serverConn) parseResponse(h []byte) error {
	line, rest := cutLine(h)
	if len(line) < 12 || line[8] != ' ' || (string(line[:8]) != "HTTP/1.1" && string(line[:8]) != "HTTP/1.0") {
		return errMalformedHead
	}
	code := 0
	for _, x := range line[9:12] {
		if x < '0' || x > '9' {
			return errMalformedHead
		}
		code = code*10 + int(x-'0')
	}
	if len(line) > 12 && line[12] != ' ' {
		return errMalformedHead
	}
	http10 := line[7] == '0'
	rh := &c.rh
	*rh = respHead{status: code, statusTxt: line[9:], length: -1, headLen: rh.headLen}
	var ok bool
	if c.rfields, ok = parseFields(rest, c.rfields[:0]); !ok {
		return errMalformedHead
	}
	keepAlive := false
	c.tokens = c.tokens[:0]
	for i := range c.rfields {
		f := &c.rfields[i]
		n := f.name
		switch {
		case eqFold(n, "Content-Length"):
			v, err := strconv.ParseInt(string(f.value), 10, 64)
			if err != nil || v < 0 || (rh.length >= 0 && v != rh.length) {
				return errBadContentLength
			}
			rh.length = v
		case eqFold(n, "Transfer-Encoding"):
			if !eqFold(f.value, "chunked") || rh.chunked {
				return errUnsupportedTE
			}
			rh.chunked = true
			f.drop = true
		case eqFold(n, "Connection"):
			f.drop = true
			eachToken(f.value, func(t []byte) {
				switch {
				case eqFold(t, "close"):
					rh.closeConn = true
				case eqFold(t, "keep-alive"):
					keepAlive = true
				}
				c.tokens = append(c.tokens, t)
			})
		case eqFold(n, "Date"):
			rh.hasDate = true
		default:
			f.drop = hopByHop(n)
		}
	}
	if len(c.tokens) > 0 {
		for i := range c.rfields {
			for _, t := range c.tokens {
				if eqFold(c.rfields[i].name, string(t)) {
					c.rfields[i].drop = true
				}
			}
		}
	}
	if http10 && !keepAlive {
		rh.closeConn = true
	}
	return nil
}

// writeResponseHead writes the filtered response head to the client and
// returns the body framing.
func (c *serverConn) writeResponseHead(served *pool, setCookie bool, now time.Time) int {
	rh := &c.rh
	body := bodyLength
	switch {
	case c.head || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified:
		body = bodyNone
	case rh.chunked:
		body = bodyChunked
	case rh.length < 0:
		body = bodyUntilClose
	}
	w := &c.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(rh.statusTxt)
	w.WriteString("\r\n")
	for _, f := range c.rfields {
		if f.drop || (body == bodyChunked && eqFold(f.name, "Content-Length")) {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if setCookie {
		w.WriteString("Set-Cookie: ")
		w.WriteString(served.cookie)
		w.WriteString("\r\n")
	}
	if !rh.hasDate {
		w.Write(c.r.srv.dateHeader(now))
	}
	if body == bodyChunked || body == bodyUntilClose || (c.head && rh.chunked) {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if c.closeAfter || c.r.srv.shutting.Load() {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	return body
}

// relayBody copies the response body from the instance to the client. A
// body delimited by the end of the connection goes to the client chunked.
// Errors reading from the instance wrap errBackendRead.
func (c *serverConn) relayBody(uc *upConn, body int) error {
	switch body {
	case bodyLength:
		return c.relayN(uc, c.rh.length)
	case bodyChunked:
		return c.relayChunked(uc)
	case bodyUntilClose:
		for {
			if uc.br.Buffered() == 0 {
				err := c.waitUpstream(uc)
				if errors.Is(err, errClientGone) {
					return err
				}
				if err != nil {
					_, werr := c.bw.WriteString("0\r\n\r\n")
					return werr
				}
			}
			b, _ := uc.br.Peek(uc.br.Buffered())
			c.bw.WriteString(strconv.FormatInt(int64(len(b)), 16))
			c.bw.WriteString("\r\n")
			c.bw.Write(b)
			if _, err := c.bw.WriteString("\r\n"); err != nil {
				return err
			}
			uc.br.Discard(len(b))
		}
	}
	return nil
}

// relayN copies n body bytes.
func (c *serverConn) relayN(uc *upConn, n int64) error {
	for n > 0 {
		if uc.br.Buffered() == 0 {
			if err := c.waitUpstream(uc); err != nil {
				return c.backendErr(err)
			}
		}
		k := uc.br.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		b, _ := uc.br.Peek(k)
		if _, err := c.bw.Write(b); err != nil {
			return err
		}
		uc.br.Discard(k)
		n -= int64(k)
	}
	return nil
}

func (c *serverConn) backendErr(err error) error {
	if errors.Is(err, errClientGone) {
		return err
	}
	return errors.Join(errBackendRead, err)
}

// readLine returns the next line of the upstream body (with its line end),
// valid until the next read of uc.br.
func (c *serverConn) readLine(uc *upConn) ([]byte, error) {
	for {
		buf, _ := uc.br.Peek(uc.br.Buffered())
		if i := indexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if len(buf) >= uc.br.Size() {
			return nil, c.backendErr(errBadChunk)
		}
		if err := c.waitUpstream(uc); err != nil {
			return nil, c.backendErr(err)
		}
	}
}

// relayChunked copies a chunked body as it comes, chunk by chunk, and its
// trailer section.
func (c *serverConn) relayChunked(uc *upConn) error {
	for {
		line, err := c.readLine(uc)
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			return c.backendErr(errBadChunk)
		}
		c.bw.WriteString(strconv.FormatInt(size, 16))
		c.bw.WriteString("\r\n")
		uc.br.Discard(len(line))
		if size == 0 {
			for { // trailer section, through the empty line
				line, err := c.readLine(uc)
				if err != nil {
					return err
				}
				end := len(line) == 1 || (len(line) == 2 && line[0] == '\r')
				c.bw.Write(line)
				uc.br.Discard(len(line))
				if end {
					return nil
				}
			}
		}
		if err := c.relayN(uc, size); err != nil {
			return err
		}
		line, err = c.readLine(uc)
		if err != nil {
			return err
		}
		if !(len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			return c.backendErr(errBadChunk)
		}
		uc.br.Discard(len(line))
		if _, err := c.bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
}

// chunkSize parses a chunk-size line, ignoring extensions.
func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, x := range line {
		var d byte
		switch {
		case '0' <= x && x <= '9':
			d = x - '0'
		case 'a' <= x && x <= 'f':
			d = x - 'a' + 10
		case 'A' <= x && x <= 'F':
			d = x - 'A' + 10
		default:
			return n, digits > 0 && (x == ';' || x == '\r' || x == '\n' || x == ' ' || x == '\t')
		}
		if digits++; digits > 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, false
}

// writeError answers a router error like http.Error does. It reports
// whether the connection may go on.
func (c *serverConn) writeError(code int, msg string, retryAfter bool) bool {
	w := &c.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(code))
	w.WriteString(" ")
	w.WriteString(http.StatusText(code))
	w.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	if retryAfter {
		w.WriteString("Retry-After: 1\r\n")
	}
	w.Write(c.r.srv.dateHeader(time.Now()))
	w.WriteString("Content-Length: ")
	w.WriteString(strconv.Itoa(len(msg) + 1))
	w.WriteString("\r\n")
	if c.closeAfter || c.r.srv.shutting.Load() {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if !c.head {
		w.WriteString(msg)
		w.WriteString("\n")
	}
	return w.err == nil
}

// newUpConn wraps a new connection to an instance.
func newUpConn(nc net.Conn) *upConn {
	c := &upConn{nc: nc, rio: newRawIO(nc)}
	c.rio.upstream = true
	c.lim.R = &c.rio
	c.lim.N = 1<<63 - 1
	c.br = bufio.NewReaderSize(&c.lim, upstreamBuffer)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c
}

// bufConn is a client connection handed to net/http with the bytes the
// fast loop already read.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener is the net.Listener of the net/http server that takes the
// connections the fast loop hands over.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// deliver gives c to the net/http server; false when it has stopped.
func (l *connListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// setReadDeadline sets the client connection's read deadline and records it.
func (c *serverConn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	c.readBy = t
}
