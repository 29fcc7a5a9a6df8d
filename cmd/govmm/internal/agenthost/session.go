package agenthost

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/govmm/govmm/guest/agent"
)

// Session is govmm's side of the conversation with the guest's init about
// a container's process (guest/agent): it sends the process once the guest
// says its ports are ready, passes standard input only after that (bytes
// that reached the tty before the guest made it raw would be echoed back
// as output), forwards signals and terminal sizes, and keeps how the
// process ended.
type Session struct {
	proc agent.Process
	// toGuest queues messages for the control port. One goroutine writes
	// them: a guest that stops reading blocks that goroutine only, and
	// messages past the queue are dropped rather than stall a signal
	// handler.
	toGuest chan agent.Message
	// feedStdin starts passing standard input; called once, on "ready".
	feedStdin func()

	mu      sync.Mutex
	ready   bool
	started bool
	exit    *agent.Exit
	failure *agent.Error
	bad     error // the first malformed message
	times   Timeline
	ended   chan struct{} // closed when the guest reports an exit or a failure
	done    chan struct{} // closed when the control port's output ends
}

// outbox bounds the messages waiting for the guest to read its control
// port.
const outbox = 32

// NewSession starts the session's goroutines: one writing control to the
// guest, one reading what the guest writes (fromGuest), until fromGuest
// ends.
func NewSession(proc agent.Process, control io.Writer, fromGuest io.Reader, feedStdin func()) *Session {
	s := &Session{
		proc: proc, toGuest: make(chan agent.Message, outbox), feedStdin: feedStdin,
		ended: make(chan struct{}), done: make(chan struct{}),
	}
	go s.write(control)
	go s.read(fromGuest)
	return s
}

func (s *Session) write(w io.Writer) {
	for m := range s.toGuest {
		if err := agent.Write(w, m); err != nil {
			return
		}
	}
}

// send queues m for the guest, dropping it if the guest has not read the
// messages before it.
func (s *Session) send(m agent.Message) {
	select {
	case s.toGuest <- m:
	default:
		slog.Warn("guest is not reading its control port; message dropped")
	}
}

func (s *Session) read(r io.Reader) {
	defer close(s.done)
	msgs := agent.NewReader(r)
	for {
		m, err := msgs.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.mu.Lock()
			if s.bad == nil {
				s.bad = err
			}
			s.mu.Unlock()
			if errors.Is(err, agent.ErrBadMessage) {
				continue
			}
			// A line past agent.MaxLine: nothing more can be read, but
			// the guest must not block on a full port.
			io.Copy(io.Discard, r) //nolint:errcheck // draining a broken stream
			return
		}
		s.handle(m)
	}
}

func (s *Session) handle(m agent.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case m.Ready && !s.ready:
		s.ready = true
		s.times.Ready = time.Now()
		p := s.proc
		s.send(agent.Message{Process: &p})
		go s.feedStdin()
	case m.Started != nil && !s.started:
		s.started = true
		s.times.Started = time.Now()
		s.times.Guest = *m.Started
	case m.Exit != nil && s.exit == nil && s.failure == nil:
		e := *m.Exit
		s.exit = &e
		close(s.ended)
	case m.Error != nil && s.exit == nil && s.failure == nil:
		e := *m.Error
		s.failure = &e
		close(s.ended)
	}
}

// Ended is closed when the guest reports an exit or a failure.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Done is closed when the control port's output has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Signal forwards a signal to the process.
func (s *Session) Signal(sig syscall.Signal) { s.send(agent.Message{Signal: int(sig)}) }

// StdinDone tells the guest that standard input has ended after n bytes.
func (s *Session) StdinDone(n int64) { s.send(agent.Message{StdinEOF: true, StdinBytes: n}) }

// Resize passes the terminal's new size.
func (s *Session) Resize(sz agent.Size) { s.send(agent.Message{Resize: &sz}) }

// End stops the writer; call once the VM is gone.
func (s *Session) End() { close(s.toGuest) }

// Timeline is when the guest said ready and said the process started, on
// the host's clock, and what the guest said of the same events on its own
// (agent.Started): a start's time split between the VM's boot, init's
// setup and the container's. A time is zero when its event did not come.
type Timeline struct {
	Ready, Started time.Time
	Guest          agent.Started
}

// Timeline is the session's timeline so far.
func (s *Session) Timeline() Timeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.times
}

// Outcome is how the process ended, as the guest told it; all nil if it
// did not (the VM ended first).
func (s *Session) Outcome() (exit *agent.Exit, failure *agent.Error, started bool, bad error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit, s.failure, s.started, s.bad
}
