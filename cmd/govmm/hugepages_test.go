package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A host that did not give guest RAM huge pages gets one line saying so
// and why; a host that did gets nothing.
func TestWarnHugePages(t *testing.T) {
	var w bytes.Buffer
	warnHugePages(&w, nil)
	if w.Len() != 0 {
		t.Errorf("huge pages granted: printed %q, want nothing", w.String())
	}
	why := errors.New("huge pages for guest RAM at 0x0: invalid argument")
	warnHugePages(&w, why)
	if got := w.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "warning") || !strings.Contains(got, why.Error()) {
		t.Errorf("huge pages refused: printed %q, want one warning line with the reason", got)
	}
}
