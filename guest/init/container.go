package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/agent"
)

// Agent mode (govmm.agent= on the command line, govmm run --bundle): init
// runs one container's process and nothing else, as fast as it can, and
// speaks guest/agent's protocol with govmm over three virtio consoles. The
// serial console is only a crash log: init prints there only when it
// cannot tell govmm.

// containerDir holds the mounts that make the container's root.
const containerDir = "/container"

// agentModules are the modules agent mode loads, in the image's load
// order: the virtio transport, the disk, the consoles and overlayfs.
var agentModules = map[string]bool{
	"virtio_ring": true, "virtio": true, "virtio_pci_modern_dev": true, "virtio_pci_legacy_dev": true, "virtio_pci": true,
	"virtio_blk": true, "virtio_console": true, "overlay": true,
}

// runAgent is init in agent mode; it never returns.
func runAgent(spec string) {
	ports, err := agent.ParsePorts(spec)
	if err != nil {
		agentFatal(nil, &agent.Error{Stage: "init", Msg: err.Error()})
	}
	loadModules(agentModules) // a failure shows below, as a port that does not appear
	var files [3]*os.File
	for i, name := range []string{ports.Control, ports.Stdout, ports.Stderr} {
		f, err := openRaw("/dev/" + name)
		if err != nil {
			agentFatal(nil, &agent.Error{Stage: "ports", Msg: err.Error()})
		}
		files[i] = f
	}
	c := &containerRun{control: files[0], stdio: files[1], stderr: files[2]}
	c.run()
}

// openRaw opens a tty once it appears and makes it raw, so that bytes pass
// unchanged both ways: no echo, no line editing, no signals, no newline
// translation (cfmakeraw).
func openRaw(path string) (*os.File, error) {
	if err := waitFor(path, deviceWait); err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := makeRaw(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// drain waits until the host has taken everything written to the tty
// (tcdrain: hvc counts a byte as sent once the host returned its buffer).
func drain(f *os.File) { unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1) } //nolint:errcheck // best effort before power-off

// agentFatal tells govmm why the process cannot run (on the console if the
// control port is not up) and powers off.
func agentFatal(control *os.File, e *agent.Error) {
	if control != nil && agent.Write(control, agent.Message{Error: e}) == nil {
		drain(control)
	} else {
		fmt.Printf("govmm agent: %s\n", e.Error())
	}
	unix.Sync()
	reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// containerRun is one process's life, from the host's process message to
// its exit status.
type containerRun struct {
	control, stdio, stderr *os.File
	proc                   agent.Process

	mu  sync.Mutex
	cmd *exec.Cmd
	pty *os.File // the terminal's master with Terminal
	// ptySlave is the terminal's slave when it was opened in the guest's
	// own devpts (guestPTY) before the switch to the container's root.
	ptySlave *os.File
	stdinW   *os.File // the process's stdin without Terminal
	passed   int64    // bytes of input passed to the process
	inTotal  int64    // how many the host sent; -1 until it says
	readyMS  float64  // uptimeMS when init said ready
}

// uptimeMS is the guest's CLOCK_BOOTTIME in milliseconds, the clock of
// /proc/uptime; 0 if it cannot be read.
func uptimeMS() float64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return float64(ts.Nano()) / 1e6
}

func (c *containerRun) fail(stage string, err error) {
	e := &agent.Error{Stage: stage, Msg: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOENT:
			e.NotFound = true
		case unix.EACCES, unix.ENOEXEC, unix.EISDIR:
			e.NotExecutable = true
		}
	}
	if errors.Is(err, errNotFound) {
		e.NotFound = true
	}
	agentFatal(c.control, e)
}

func (c *containerRun) run() {
	c.readyMS = uptimeMS()
	if err := agent.Write(c.control, agent.Message{Ready: true}); err != nil {
		agentFatal(nil, &agent.Error{Stage: "ports", Msg: err.Error()})
	}
	msgs := agent.NewReader(c.control)
	for {
		m, err := msgs.Read()
		if err != nil && !errors.Is(err, agent.ErrBadMessage) {
			agentFatal(nil, &agent.Error{Stage: "control", Msg: err.Error()})
		}
		if m.Process != nil {
			c.proc = *m.Process
			break
		}
	}
	c.inTotal = -1
	if c.proc.Terminal && !mountsDevpts(c.proc.Mounts) {
		m, s, err := guestPTY(c.proc.ConsoleSize)
		if err != nil {
			c.fail("terminal", err)
		}
		c.pty, c.ptySlave = m, s
	}
	if err := setUpNetwork(c.proc.Interfaces); err != nil {
		c.fail("network", err)
	}
	if err := enterContainerRoot(c.proc); err != nil {
		c.fail("mount", err)
	}
	if c.proc.Hostname != "" {
		if err := unix.Sethostname([]byte(c.proc.Hostname)); err != nil {
			c.fail("hostname", err)
		}
	}
	if err := c.start(); err != nil {
		c.fail("exec", err)
	}
	go c.serveControl(msgs)
	c.finish(c.wait())
}

// start starts the process with its credentials, limits and stdio.
func (c *containerRun) start() error {
	p := c.proc
	if len(p.Args) == 0 {
		return errors.New("no args")
	}
	env := p.Env
	if _, ok := lookupEnv(env, "HOME"); !ok {
		env = append(append([]string(nil), env...), "HOME="+homeOf(p.UID))
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return err
	}
	// Limits, umask and no_new_privs are inherited: init sets them on
	// itself, as it runs nothing else from here on.
	for _, rl := range p.Rlimits {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %s", rl.Type)
		}
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", rl.Type, err)
		}
	}
	umask := 0o022
	if p.Umask != nil {
		umask = int(*p.Umask)
	}
	unix.Umask(umask)
	if p.NoNewPrivileges {
		// no_new_privs belongs to the thread, not the process: the fork
		// below must come from the thread that set it, so this goroutine
		// keeps it for good (init runs nothing else after the process).
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	cmd := &exec.Cmd{Path: path, Args: p.Args, Env: env, Dir: p.Cwd}
	groups := make([]uint32, len(p.AdditionalGids))
	copy(groups, p.AdditionalGids)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: p.UID, Gid: p.GID, Groups: groups},
		Setsid:     true,
	}
	var childEnds []*os.File
	if p.Terminal {
		master, slave := c.pty, c.ptySlave
		if slave == nil {
			if master, slave, err = openPTY("/dev/ptmx", "/dev/pts", p.ConsoleSize); err != nil {
				return fmt.Errorf("terminal: %w", err)
			}
		}
		c.pty = master
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, 0
		childEnds = append(childEnds, slave)
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		c.stdinW = inW
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		childEnds = append(childEnds, inR, outW, errW)
		c.relayOut(outR, c.stdio)
		c.relayOut(errR, c.stderr)
	}
	execMS := uptimeMS()
	err = cmd.Start()
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	if p.Terminal {
		c.relayOut(c.pty, c.stdio)
	}
	go c.relayIn()
	return agent.Write(c.control, agent.Message{Started: &agent.Started{
		PID: cmd.Process.Pid, ReadyUptimeMS: c.readyMS, ExecUptimeMS: execMS,
	}})
}

// outputs counts the output relays still running.
var outputs sync.WaitGroup

// relayOut copies the process's output to a port until the last writer
// is gone.
func (c *containerRun) relayOut(from, to *os.File) {
	outputs.Add(1)
	go func() {
		defer outputs.Done()
		io.Copy(to, from) //nolint:errcheck // EOF or EIO (a pty's master once the slave is gone) ends it
		from.Close()
	}()
}

// relayIn passes input from the stdio port to the process: into its
// terminal, or into its stdin pipe until the host's count is reached.
func (c *containerRun) relayIn() {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.stdio.Read(buf)
		if n > 0 {
			c.mu.Lock()
			to := c.stdinW
			if c.pty != nil {
				to = c.pty
			}
			c.mu.Unlock()
			if to != nil {
				to.Write(buf[:n]) //nolint:errcheck // a process that closed stdin drops its input, as a pipe would
			}
			c.mu.Lock()
			c.passed += int64(n)
			c.closeStdinIfDone()
			c.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// closeStdinIfDone closes the process's stdin once the host's count of
// input has passed. c.mu is held.
func (c *containerRun) closeStdinIfDone() {
	if c.stdinW != nil && c.inTotal >= 0 && c.passed >= c.inTotal {
		c.stdinW.Close()
		c.stdinW = nil
	}
}

// serveControl handles the host's messages while the process runs.
func (c *containerRun) serveControl(msgs *agent.Reader) {
	for {
		m, err := msgs.Read()
		if errors.Is(err, agent.ErrBadMessage) {
			continue
		}
		if err != nil {
			return
		}
		c.mu.Lock()
		switch {
		case m.Signal != 0 && c.cmd != nil:
			c.cmd.Process.Signal(syscall.Signal(m.Signal)) //nolint:errcheck // gone already
		case m.StdinEOF:
			c.inTotal = m.StdinBytes
			c.closeStdinIfDone()
		case m.Resize != nil && c.pty != nil:
			setSize(c.pty, *m.Resize)
		}
		c.mu.Unlock()
	}
}

// wait returns the process's status once it ended.
func (c *containerRun) wait() *agent.Exit {
	c.cmd.Wait() //nolint:errcheck // the status says it
	st, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && st.Signaled():
		return &agent.Exit{Signal: int(st.Signal())}
	case ok:
		return &agent.Exit{Code: st.ExitStatus()}
	}
	return &agent.Exit{Code: 255}
}

// finish ends what the process left behind, as the end of a container's
// PID namespace would, lets its output reach the host, reports its status
// and powers off.
func (c *containerRun) finish(exit *agent.Exit) {
	unix.Kill(-1, unix.SIGKILL) //nolint:errcheck // ESRCH: nothing left
	reap()
	done := make(chan struct{})
	go func() { outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// A descriptor of the output passed somewhere init cannot
		// kill: report the status anyway.
	}
	drain(c.stdio)
	drain(c.stderr)
	if agent.Write(c.control, agent.Message{Exit: exit}) == nil {
		drain(c.control)
	}
	unix.Sync()
	reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// reapWait bounds the wait for killed processes to go.
const reapWait = 2 * time.Second

// reap collects the killed processes (init inherits the process's
// orphans) until none is left or reapWait has passed.
func reap() {
	deadline := time.Now().Add(reapWait)
	for time.Now().Before(deadline) {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR || pid > 0:
		case pid == 0:
			time.Sleep(time.Millisecond)
		default:
			return // ECHILD: none left
		}
	}
}
