package agent

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestMessagesRoundTrip(t *testing.T) {
	umask := uint32(0o22)
	msgs := []Message{
		{Ready: true},
		{Process: &Process{Args: []string{"/probe", "a b"}, Env: []string{"PATH=/bin"}, Cwd: "/", UID: 1000, GID: 1000,
			AdditionalGids: []uint32{5, 6}, Umask: &umask, Hostname: "box", Rlimits: []Rlimit{{"RLIMIT_NOFILE", 1024, 1024}},
			RootDevice: "/dev/vda", Mounts: []Mount{{"/proc", "proc", "proc", nil}}}},
		{Started: &Started{PID: 7}},
		{StdinEOF: true, StdinBytes: 1 << 20},
		{Signal: 15},
		{Resize: &Size{Rows: 24, Cols: 80}},
		{Exit: &Exit{Code: 3}},
		{Exit: &Exit{Signal: 9}},
		{Error: &Error{Stage: "exec", Msg: "no such file", NotFound: true}},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := Write(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(msgs) {
		t.Fatalf("%d lines for %d messages", n, len(msgs))
	}
	r := NewReader(&buf)
	for i, want := range msgs {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}

func TestReaderRejectsGarbage(t *testing.T) {
	r := NewReader(strings.NewReader("\n{\"ready\":true}\nnot json\n"))
	if m, err := r.Read(); err != nil || !m.Ready {
		t.Fatalf("first: %+v %v", m, err)
	}
	if _, err := r.Read(); !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "not json") {
		t.Fatalf("garbage line: %v, want ErrBadMessage quoting it", err)
	}
}

func TestParsePorts(t *testing.T) {
	p, err := ParsePorts("hvc0,hvc1,hvc2")
	if err != nil || p != (Ports{"hvc0", "hvc1", "hvc2"}) || p.String() != "hvc0,hvc1,hvc2" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "hvc0", "hvc0,hvc1", "hvc0,,hvc2", "a,b,c,d"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
