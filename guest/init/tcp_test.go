package main

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A guest powers off as soon as its checks return: closeAndWait returns
// only once a slow host has read the whole stream and closed its side.
func TestCloseAndWaitReturnsOnceTheHostHasItAll(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var closed atomic.Bool
	read := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			read <- -1
			return
		}
		time.Sleep(200 * time.Millisecond) // a host busy elsewhere
		n, _ := io.Copy(io.Discard, c)
		closed.Store(true)
		c.Close()
		read <- n
	}()
	conn, err := net.DialTCP("tcp4", nil, l.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	const size = 1 << 20
	if _, err := conn.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := closeAndWait(conn); err != nil {
		t.Fatal(err)
	}
	if !closed.Load() {
		t.Fatal("closeAndWait returned before the host had read the stream and closed")
	}
	if n := <-read; n != size {
		t.Fatalf("the host read %d bytes, want %d", n, size)
	}
}
