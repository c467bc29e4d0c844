package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// The fast path carries requests without a body (GET, HEAD, OPTIONS) over
// the router's own HTTP/1.1 keep-alive connections: the request is written
// and the response read on the handler's goroutine, with none of
// http.Transport's per-connection goroutines and channel hand-offs. Every
// other request (bodies, upgrades) goes through http.Transport.

const (
	maxResponseHead    = 1 << 20 // bytes of status line and header, like http.Transport's limit
	maxIdlePerInstance = 512
	maxIdleTime        = 30 * time.Second
	dialTimeout        = 2 * time.Second
)

// upConn is one keep-alive connection to an instance.
type upConn struct {
	nc    net.Conn
	rio   rawIO            // under lim: writes the pending request of Serve's loop
	lim   io.LimitedReader // under br: bounds the response head
	br    *bufio.Reader
	bw    *bufio.Writer
	idle  time.Time       // when it was put back
	reuse bool            // taken from the idle list
	stop  func() bool     // stops the cancellation hook of the current request
	ctx   context.Context // of the current request
	// readBy is the read deadline set on nc (zero: none).
	readBy time.Time
}

// setReadDeadline sets the connection's read deadline and records it.
func (c *upConn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	c.readBy = t
}

// abort is the cancellation hook: a request whose client went away
// unblocks the read or write in progress.
func (c *upConn) abort() { c.nc.SetDeadline(time.Unix(1, 0)) }

// connPool holds the idle connections of one instance, most recent last.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

func (p *connPool) get() *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if time.Since(c.idle) < maxIdleTime {
			c.reuse = true
			return c
		}
		c.nc.Close()
	}
	return nil
}

func (p *connPool) put(c *upConn) {
	c.idle = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerInstance {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	// Reap the oldest connection when it has been idle too long.
	if len(p.idle) > 0 && c.idle.Sub(p.idle[0].idle) > maxIdleTime {
		old := p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		old.nc.Close()
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// close closes the idle connections and makes put close the busy ones
// when they come back.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// fastPath reports whether a request goes over the router's own
// connections: an idempotent method without a body, so a stale keep-alive
// connection can be retried on a fresh one.
func fastPath(req *http.Request, body *trackedBody) bool {
	if body != nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// roundTrip sends req (its header already prepared) to the instance over a
// pooled or new connection and reads the response head. On success the
// caller must call finish with the returned connection once it is done
// with the body.
func (r *Router) roundTrip(in *instance, req *http.Request) (*http.Response, *upConn, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c := in.conns.get()
		if c == nil {
			nc, err := r.dialer.DialContext(ctx, "tcp", in.addr)
			if err != nil {
				return nil, nil, err
			}
			c = newUpConn(nc)
		} else {
			c.setReadDeadline(time.Time{}) // Serve's loop leaves one behind
		}
		c.ctx = ctx
		c.stop = context.AfterFunc(ctx, c.abort)
		resp, err := writeAndRead(c, req, in.addr)
		if err == nil {
			return resp, c, nil
		}
		c.stop()
		c.nc.Close()
		// A keep-alive connection the instance closed while it was idle
		// fails on first use; the request is idempotent, so try a new one.
		if c.reuse && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, nil, err
	}
}

func writeAndRead(c *upConn, req *http.Request, addr string) (*http.Response, error) {
	if err := writeRequest(c.bw, req, addr); err != nil {
		return nil, err
	}
	for {
		c.lim.N = maxResponseHead
		resp, err := http.ReadResponse(c.br, req)
		c.lim.N = math.MaxInt64
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		// Skip informational answers (100 Continue, 103 Early Hints).
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
}

// writeRequest writes the head of a bodyless request in HTTP/1.1 form and
// flushes it. The header is the inbound one, already cleaned of hop-by-hop
// fields; the server that parsed it rejected invalid names and values. An
// empty User-Agent marks one the client did not send and is left out.
func writeRequest(bw *bufio.Writer, req *http.Request, addr string) error {
	uri := req.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = req.URL.RequestURI() // absolute-form: send origin-form
	}
	host := req.Host
	if host == "" {
		host = addr
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range req.Header {
		if k == "Host" || k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			if v == "" && k == "User-Agent" {
				continue
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

// finish returns the connection to the instance's pool when the body was
// read to its end and the connection may be kept, and closes it otherwise.
func (r *Router) finish(in *instance, c *upConn, resp *http.Response, complete bool) {
	aborted := !c.stop()
	if complete && !aborted && !resp.Close && c.br.Buffered() == 0 {
		c.ctx, c.stop, c.reuse = nil, nil, false
		in.conns.put(c)
		return
	}
	c.nc.Close()
}
