package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

const (
	ctrlA = 0x01

	escapeHelp = "\r\ngovmm console: Ctrl-A x  stop the VM   Ctrl-A a  send Ctrl-A   Ctrl-A h  this help\r\n"
)

// escaper recognises QEMU's console escapes in what the user types: Ctrl-A
// followed by a command letter. Everything else passes to the guest.
type escaper struct{ afterCtrlA bool }

type escapeAction int

const (
	actionNone escapeAction = iota
	actionQuit
	actionHelp
)

// feed returns the bytes for the guest and what the user asked govmm to do.
// Input after a quit is dropped.
func (e *escaper) feed(in []byte) ([]byte, escapeAction) {
	out := make([]byte, 0, len(in))
	action := actionNone
	for _, b := range in {
		if !e.afterCtrlA {
			if b == ctrlA {
				e.afterCtrlA = true
			} else {
				out = append(out, b)
			}
			continue
		}
		e.afterCtrlA = false
		switch b {
		case 'x', 'X':
			return out, actionQuit
		case 'a', ctrlA:
			out = append(out, ctrlA)
		case 'h', 'H', '?':
			action = actionHelp
		}
	}
	return out, action
}

// console forwards standard input to the guest until the process ends.
type console struct {
	fd    int
	saved *term.State
}

// startConsole puts a terminal in raw mode and starts forwarding. The
// forwarding goroutine lives as long as the process: a read on a terminal
// cannot be cancelled, and the command exits right after the VM.
func startConsole(stdin *os.File, stderr io.Writer, input func([]byte), quit func()) (*console, error) {
	c := &console{fd: int(stdin.Fd())}
	if !term.IsTerminal(c.fd) {
		go forward(stdin, input)
		return c, nil
	}
	fmt.Fprintln(stderr, "govmm: console attached; type Ctrl-A x to stop the VM, Ctrl-A h for help")
	saved, err := term.MakeRaw(c.fd)
	if err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	c.saved = saved
	go forwardEscaped(stdin, stderr, input, quit)
	return c, nil
}

func forward(r io.Reader, input func([]byte)) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			input(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func forwardEscaped(r io.Reader, stderr io.Writer, input func([]byte), quit func()) {
	var esc escaper
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		out, action := esc.feed(buf[:n])
		if len(out) > 0 {
			input(out)
		}
		switch action {
		case actionQuit:
			quit()
			return
		case actionHelp:
			fmt.Fprint(stderr, escapeHelp)
		}
		if err != nil {
			return
		}
	}
}

// restore returns the terminal to the mode it was in.
func (c *console) restore() {
	if c.saved != nil {
		if err := term.Restore(c.fd, c.saved); err != nil {
			fmt.Fprintf(os.Stderr, "govmm: restore terminal: %v (type 'reset')\n", err)
		}
		c.saved = nil
	}
}
