package router

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawIO reads a connection for a bufio.Reader and can write a pending
// buffer first, in the same poller wait. A request upstream and the wait
// for its answer then cost one write and one read: the usual write, read
// (EAGAIN), wait, read sequence costs a read more on every exchange, which
// is measurable in a proxy that does little else. The pending bytes are
// written after the poller's readiness was reset, so an answer arriving
// right after the write is never missed.
//
// Only the goroutine that owns the connection writes it, so writing
// under the read lock is safe.
//
// The poller callback is a method value bound once, and its arguments and
// results live in the struct: a closure would put them on the heap at
// every Read (four allocations). So a rawIO must not be copied once used.
type rawIO struct {
	nc      net.Conn
	rc      syscall.RawConn // nil when nc is not a plain socket
	pending []byte          // written by the next Read before it waits
	// upstream says what is pending is a request to an upstream, whose
	// answer cannot be in the socket before the request is written: the
	// read after writing it is skipped. A client's next request can be
	// there before its answer is written.
	upstream bool

	poll       func(fd uintptr) bool // r.wait, bound at the first Read
	p          []byte                // the current Read's buffer
	n          int
	werr, rerr error
}

func newRawIO(nc net.Conn) rawIO {
	r := rawIO{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	return r
}

// Read writes r.pending, if any, then reads into p.
func (r *rawIO) Read(p []byte) (int, error) {
	if r.rc == nil {
		if len(r.pending) > 0 {
			_, err := r.nc.Write(r.pending)
			r.pending = nil
			if err != nil {
				return 0, err
			}
		}
		return r.nc.Read(p)
	}
	if r.poll == nil {
		r.poll = r.wait
	}
	r.p, r.n, r.werr, r.rerr = p, 0, nil, nil
	err := r.rc.Read(r.poll)
	n, werr, rerr := r.n, r.werr, r.rerr
	r.p, r.werr, r.rerr = nil, nil, nil
	switch {
	case werr != nil:
		return 0, os.NewSyscallError("write", werr)
	case err != nil:
		return 0, err
	case len(r.pending) > 0:
		_, err := r.nc.Write(r.pending)
		r.pending = nil
		if err != nil {
			return 0, err
		}
		return r.Read(p)
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n <= 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// wait is the poller callback of Read: it writes r.pending, then reads
// into r.p, and reports whether the poller may stop waiting.
func (r *rawIO) wait(fd uintptr) bool {
	if len(r.pending) > 0 {
		for len(r.pending) > 0 {
			w, e := sysWrite(int(fd), r.pending)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return true // the send buffer is full: Read writes the rest below
			case e != nil:
				r.werr, r.pending = e, nil
				return true
			}
			r.pending = r.pending[w:]
		}
		if r.upstream {
			return false // a request went out: its answer cannot be there yet
		}
		// A client may have sent its next request before this answer
		// (pipelining): its bytes would be there already, and their
		// readiness gone with the reset, so they are read now.
	}
	for {
		r.n, r.rerr = sysRead(int(fd), r.p)
		if r.rerr != syscall.EINTR {
			break
		}
	}
	return r.rerr != syscall.EAGAIN
}

// outBuf buffers what goes to a client connection. The loop hands the
// last bytes of an answer to rawIO as pending, so that they are written
// by the read that waits for the next request.
type outBuf struct {
	nc  net.Conn
	buf []byte
	err error
}

func (w *outBuf) Buffered() int { return len(w.buf) }

func (w *outBuf) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		_, w.err = w.nc.Write(w.buf)
		w.buf = w.buf[:0]
	}
	return w.err
}

func (w *outBuf) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.Flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(w.buf) {
			n, err := w.nc.Write(p)
			w.err = err
			return n, err
		}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *outBuf) WriteString(s string) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(w.buf)+len(s) > cap(w.buf) {
		if err := w.Flush(); err != nil {
			return 0, err
		}
		if len(s) >= cap(w.buf) {
			n, err := io.WriteString(w.nc, s)
			w.err = err
			return n, err
		}
	}
	w.buf = append(w.buf, s...)
	return len(s), nil
}
