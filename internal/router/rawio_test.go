package router

import (
	"syscall"
	"testing"
)

// TestSysReadWrite checks the raw read and write on a non-blocking socket
// pair: bytes go through, an empty socket answers EAGAIN at once instead
// of blocking, and a closed descriptor answers EBADF.
func TestSysReadWrite(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer syscall.Close(a)
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	if n, err := sysRead(b, buf); err != syscall.EAGAIN {
		t.Fatalf("read of an empty socket = %d, %v; want EAGAIN", n, err)
	}
	if n, err := sysWrite(a, []byte("GET / HTTP/1.1\r\n")); n != 16 || err != nil {
		t.Fatalf("write = %d, %v; want 16, nil", n, err)
	}
	if n, err := sysWrite(a, nil); n != 0 || err != nil {
		t.Fatalf("empty write = %d, %v; want 0, nil", n, err)
	}
	if n, err := sysRead(b, buf[:4]); n != 4 || err != nil || string(buf[:4]) != "GET " {
		t.Fatalf("read = %d, %v, %q; want 4, nil, \"GET \"", n, err, buf[:4])
	}
	if n, err := sysRead(b, buf); n != 12 || err != nil || string(buf[:12]) != "/ HTTP/1.1\r\n" {
		t.Fatalf("read = %d, %v, %q; want the other 12 bytes", n, err, buf[:n])
	}
	syscall.Close(b)
	if n, err := sysRead(b, buf); n != -1 || err != syscall.EBADF {
		t.Fatalf("read of a closed descriptor = %d, %v; want -1, EBADF", n, err)
	}
	if n, err := sysRead(a, buf); n != 0 || err != nil {
		t.Fatalf("read after the peer closed = %d, %v; want 0 (end of stream), nil", n, err)
	}
}
