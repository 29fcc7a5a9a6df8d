package machine

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestInputQueueDeliversInOrderWithoutBlockingTheWriter(t *testing.T) {
	q := newInputQueue()
	done := make(chan struct{})
	go func() {
		// Nobody reads yet: more than the queue holds must not block.
		q.Write(bytes.Repeat([]byte("a"), maxPendingInput))
		q.Write([]byte("dropped"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked with no reader")
	}
	got := make([]byte, 2*maxPendingInput)
	n, err := io.ReadAtLeast(q, got, maxPendingInput)
	if err != nil || n != maxPendingInput || bytes.Contains(got[:n], []byte("d")) {
		t.Fatalf("read %d bytes, %v; want the %d queued bytes and nothing past the limit", n, err, maxPendingInput)
	}
	q.Write([]byte("xy"))
	if n, _ := q.Read(got); string(got[:n]) != "xy" {
		t.Fatalf("after draining, read %q, want xy", got[:n])
	}
}

func TestInputQueueCloseWakesReader(t *testing.T) {
	q := newInputQueue()
	errc := make(chan error, 1)
	go func() {
		_, err := q.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	q.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Read after Close = %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := q.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}
