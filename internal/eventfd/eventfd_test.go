package eventfd

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestWritesAddUpAndReadResets(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, v := range []uint64{1, 2, 3} {
		if err := e.Write(v); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.Read(); err != nil || got != 6 {
		t.Fatalf("Read() = %d, %v; want 6", got, err)
	}
	if err := e.Write(1); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Read(); err != nil || got != 1 {
		t.Fatalf("second Read() = %d, %v; want 1 (counter reset by the first read)", got, err)
	}
}

func TestCloseWakesReader(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Read()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	e.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after Close")
	}
}
