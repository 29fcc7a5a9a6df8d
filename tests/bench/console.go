package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// console reads the guest's serial output as the VMM prints it, until EOF.
// done and lines are for reading once eof is closed.
type console struct {
	marker chan initMarker // the first GOVMM-REPORT line
	eof    chan struct{}
	done   string   // what GOVMM-DONE announced
	lines  []string // the last few lines, for error messages
}

// initMarker is the guest's report and when bench read it.
type initMarker struct {
	rep report.Report
	at  time.Time
}

const keptLines = 10

func readConsole(r io.Reader) *console {
	c := &console{marker: make(chan initMarker, 1), eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		br := bufio.NewReader(r)
		seen := false
		for {
			// ReadString, not a Scanner: a long line must not stop the
			// reading, or the VMM would block on a full pipe.
			line, err := br.ReadString('\n')
			if line = strings.TrimRight(line, "\r\n"); line != "" {
				c.keep(line)
				if rep, ok := report.Parse(line); ok && !seen {
					seen = true
					c.marker <- initMarker{rep: rep, at: time.Now()}
				} else if i := strings.Index(line, report.DonePrefix); i >= 0 {
					c.done = strings.TrimSpace(line[i+len(report.DonePrefix):])
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *console) keep(line string) {
	if len(c.lines) == keptLines {
		c.lines = c.lines[1:]
	}
	c.lines = append(c.lines, line)
}

// waitReport returns the init marker, or why it will not come.
func (c *console) waitReport(ctx context.Context) (initMarker, error) {
	select {
	case m := <-c.marker:
		return m, nil
	case <-c.eof:
		// The marker may have come just before the end.
		select {
		case m := <-c.marker:
			return m, nil
		default:
		}
		return initMarker{}, errors.New("the VMM exited before the guest's init reported (no GOVMM-REPORT line)")
	case <-ctx.Done():
		return initMarker{}, errors.New("no GOVMM-REPORT line from the guest's init")
	}
}

// tail keeps the end of what is written to it, until quitting starts; from
// then on it keeps the beginning of what follows: the state the VMM prints.
type tail struct {
	mu     sync.Mutex
	buf    []byte
	quit   bool
	onQuit []byte
}

const tailBytes = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.quit {
		if room := tailBytes - len(t.onQuit); room > 0 {
			t.onQuit = append(t.onQuit, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if n := len(t.buf); n > tailBytes {
		t.buf = t.buf[n-tailBytes:]
	}
	return len(p), nil
}

// quitting marks where the VMM was asked for its state.
func (t *tail) quitting() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quit = true
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// state is what the VMM printed once asked, up to the Go runtime's own
// goroutine dump, which is too long for an error message.
func (t *tail) state() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.onQuit)
	if i := strings.Index(s, "SIGQUIT: quit"); i >= 0 {
		s = s[:i]
	}
	return s
}
