package agenthost

import (
	"bytes"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/agent"
)

// fakeGuest is the guest's end of a session's control port.
type fakeGuest struct {
	in  *agent.Reader  // what govmm sent
	out *io.PipeWriter // what the guest says
}

func startSession(t *testing.T, feed func()) (*Session, fakeGuest) {
	t.Helper()
	toGuestR, toGuestW := io.Pipe()
	fromGuestR, fromGuestW := io.Pipe()
	s := NewSession(agent.Process{Args: []string{"/probe"}, RootDevice: "/dev/vda"}, toGuestW, fromGuestR, feed)
	t.Cleanup(func() {
		fromGuestW.Close()
		<-s.done
		s.End()
		toGuestR.Close()
	})
	return s, fakeGuest{agent.NewReader(toGuestR), fromGuestW}
}

func (g fakeGuest) say(t *testing.T, m agent.Message) {
	t.Helper()
	if err := agent.Write(g.out, m); err != nil {
		t.Fatal(err)
	}
}

func (g fakeGuest) hear(t *testing.T) agent.Message {
	t.Helper()
	got := make(chan agent.Message, 1)
	go func() {
		m, err := g.in.Read()
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("govmm sent nothing to the guest")
	}
	return agent.Message{}
}

func TestSessionSendsProcessAndStdinOnlyAfterReady(t *testing.T) {
	fed := make(chan struct{})
	s, g := startSession(t, func() { close(fed) })
	select {
	case <-fed:
		t.Fatal("stdin was fed before the guest said ready: the tty would echo it back")
	case <-time.After(50 * time.Millisecond):
	}
	before := time.Now()
	g.say(t, agent.Message{Ready: true})
	if m := g.hear(t); m.Process == nil || m.Process.Args[0] != "/probe" {
		t.Fatalf("after ready govmm sent %+v, want the process", m)
	}
	<-fed
	g.say(t, agent.Message{Ready: true}) // a second ready sends nothing twice
	s.Signal(syscall.SIGTERM)
	if m := g.hear(t); m.Signal != int(syscall.SIGTERM) {
		t.Fatalf("sent %+v, want signal 15", m)
	}
	g.say(t, agent.Message{Started: &agent.Started{PID: 2, ReadyUptimeMS: 900, ExecUptimeMS: 1200}})
	g.say(t, agent.Message{Started: &agent.Started{PID: 7}}) // only the first counts
	g.say(t, agent.Message{Exit: &agent.Exit{Code: 3}})
	g.say(t, agent.Message{Exit: &agent.Exit{Code: 9}}) // only the first counts
	g.out.Close()
	<-s.done
	exit, failure, started, bad := s.Outcome()
	if exit == nil || exit.Code != 3 || failure != nil || !started || bad != nil {
		t.Fatalf("outcome %+v %+v %v %v, want exit 3, started", exit, failure, started, bad)
	}
	select {
	case <-s.ended:
	default:
		t.Fatal("ended not closed after the exit message")
	}
	tl := s.Timeline()
	if tl.Ready.Before(before) || tl.Started.Before(tl.Ready) || time.Since(tl.Ready) > time.Minute {
		t.Errorf("timeline ready %v started %v, want both after %v, in order", tl.Ready, tl.Started, before)
	}
	if tl.Guest.PID != 2 || tl.Guest.ReadyUptimeMS != 900 || tl.Guest.ExecUptimeMS != 1200 {
		t.Errorf("guest's side of the timeline %+v, want the first started message's", tl.Guest)
	}
}

func TestSessionSurvivesAHostileGuest(t *testing.T) {
	s, g := startSession(t, func() {})
	// Garbage, then a line longer than any message may be: the session
	// keeps the first error, drains the port and never blocks the guest.
	g.say(t, agent.Message{Ready: true})
	g.hear(t)
	io.WriteString(g.out, "not json\n")
	g.say(t, agent.Message{Error: &agent.Error{Stage: "exec", Msg: "no such file", NotFound: true}})
	done := make(chan error, 1)
	go func() {
		_, err := g.out.Write(bytes.Repeat([]byte("x"), 2*agent.MaxLine))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a guest writing an endless line blocked")
	}
	g.out.Close()
	<-s.done
	_, failure, _, bad := s.Outcome()
	if failure == nil || !failure.NotFound {
		t.Fatalf("failure %+v, want not found", failure)
	}
	if bad == nil || !strings.Contains(bad.Error(), "not json") {
		t.Fatalf("bad %v, want the garbage line", bad)
	}
}

func TestSessionDropsMessagesAGuestDoesNotRead(t *testing.T) {
	s, _ := startSession(t, func() {})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10*outbox; i++ {
			s.Signal(syscall.SIGINT)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("forwarding signals to a guest that reads nothing blocked")
	}
}
