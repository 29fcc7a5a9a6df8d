package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/govmm/govmm/cmd/govmm/internal/agenthost"
	"github.com/govmm/govmm/guest/agent"
)

func TestFirstWriteNotesTheFirstByteOnAnyWriter(t *testing.T) {
	var f firstWrite
	var out, errOut bytes.Buffer
	stdout, stderr := f.wrap(&out), f.wrap(&errOut)
	stdout.Write(nil) //nolint:errcheck // an empty write is no output
	if !f.time().IsZero() {
		t.Fatal("an empty write counted as the first output")
	}
	before := time.Now()
	stderr.Write([]byte("e")) //nolint:errcheck // a buffer
	first := f.time()
	time.Sleep(time.Millisecond)
	stdout.Write([]byte("o")) //nolint:errcheck // a buffer
	if first.Before(before) || !f.time().Equal(first) {
		t.Fatalf("first output at %v then %v, want the stderr write's time, after %v, kept", first, f.time(), before)
	}
	if out.String() != "o" || errOut.String() != "e" {
		t.Fatalf("wrapped writers got %q and %q, want the bytes passed on", out.String(), errOut.String())
	}
}

func TestBundleStartIsMillisecondsSinceLaunch(t *testing.T) {
	tl := agenthost.Timeline{
		Ready:   launched.Add(1500 * time.Millisecond),
		Started: launched.Add(2250 * time.Millisecond),
		Guest:   agent.Started{PID: 1, ReadyUptimeMS: 800, ExecUptimeMS: 1400},
	}
	got := newBundleStart(tl, time.Time{})
	want := bundleStart{ReadyMS: 1500, StartedMS: 2250, GuestReadyUptimeMS: 800, GuestExecUptimeMS: 1400}
	if *got != want {
		t.Fatalf("bundle start %+v, want %+v", *got, want)
	}
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("first_output_ms")) {
		t.Errorf("%s: an output that never came is written as a time", data)
	}
}
