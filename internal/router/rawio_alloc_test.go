package router

import (
	"net"
	"runtime"
	"testing"
)

// TestRawIOReadAllocatesNothing: a Read that writes a pending answer and
// reads the next request allocates nothing (the poller callback is bound
// once; a closure put four allocations on every Read).
func TestRawIOReadAllocatesNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the raw path is measured on Linux")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := &struct{ rio rawIO }{rio: newRawIO(b)}
	buf := make([]byte, 64)
	msg, answer := []byte("ping"), []byte("pong")
	got := make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.rio.pending = answer
		if n, err := c.rio.Read(buf); err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("Read = %q, %v; want ping", buf[:n], err)
		}
		if _, err := a.Read(got); err != nil || string(got) != "pong" {
			t.Fatalf("the pending answer arrived as %q, %v; want pong", got, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Read, want 0", allocs)
	}
}
