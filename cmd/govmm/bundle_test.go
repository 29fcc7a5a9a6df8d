package main

import (
	"io"
	"testing"
)

func TestTailKeepsTheLastBytes(t *testing.T) {
	tl := &tail{max: 8}
	if tl.String() != "" {
		t.Fatal("empty tail not empty")
	}
	io.WriteString(tl, "abc")
	if got := tl.String(); got != "abc" {
		t.Fatalf("%q", got)
	}
	for _, c := range "defghij" {
		io.WriteString(tl, string(c))
	}
	if got := tl.String(); got != "cdefghij" {
		t.Fatalf("after a byte at a time: %q, want cdefghij", got)
	}
	io.WriteString(tl, "0123456789")
	if got := tl.String(); got != "23456789" {
		t.Fatalf("after a long write: %q, want 23456789", got)
	}
}
