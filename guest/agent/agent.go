// Package agent is the protocol between govmm and the guest's init when it
// runs a container's process (govmm run --bundle). It is shared by both
// sides and depends on the standard library only.
//
// The channel is three virtio-console devices, one port each, named on the
// kernel command line by Param (govmm.agent=CONTROL,STDOUT,STDERR, e.g.
// hvc0,hvc1,hvc2): the control port carries JSON messages one per line in
// both directions, the stdout port carries the process's stdin (host →
// guest) and stdout (guest → host) as raw bytes, the stderr port its
// stderr. Separate ports keep the three streams apart without framing, so
// a byte of the process's output is never parsed or copied twice, and the
// control port is the one a later guest agent (exec, signals, health)
// extends with new message fields. virtio-console rather than virtio-vsock:
// govmm has the console device, with ioeventfd and irqfd, and a guest finds
// it with no network stack; the messages would travel unchanged over a
// vsock stream once govmm has one.
//
// The conversation:
//
//	guest → host  {"ready":true}            ports open and raw
//	host → guest  {"process":{...}}         what to run
//	guest → host  {"started":{"pid":N}}     the process is about to exec
//	host → guest  {"stdin_eof":true,"stdin_bytes":N}  input ends after N bytes on the stdout port
//	host → guest  {"signal":15}             deliver a signal to the process
//	host → guest  {"resize":{"rows":R,"cols":C}} the terminal's new size
//	guest → host  {"exit":{"code":N}} or {"exit":{"signal":N}}
//	guest → host  {"error":{"stage":"exec","msg":"..."}} the process could not start
//
// After "exit" or "error" the guest has written all of the process's output
// and powers off.
package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultPath is the PATH a process whose environment sets none is looked
// up in, by the host's bundle check and by the guest alike: the one runc,
// Docker and containerd give a container.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Param is the kernel command-line parameter that puts init in agent mode
// and names its ports: govmm.agent=CONTROL,STDOUT,STDERR.
const Param = "govmm.agent"

// Ports are the guest's tty names of the three ports.
type Ports struct{ Control, Stdout, Stderr string }

// ParsePorts reads Param's value.
func ParsePorts(v string) (Ports, error) {
	f := strings.Split(v, ",")
	if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
		return Ports{}, fmt.Errorf("%s=%q: want CONTROL,STDOUT,STDERR, e.g. hvc0,hvc1,hvc2", Param, v)
	}
	return Ports{f[0], f[1], f[2]}, nil
}

// String is Param's value for p.
func (p Ports) String() string { return p.Control + "," + p.Stdout + "," + p.Stderr }

// Process is what the guest runs: the parts of an OCI runtime spec a
// microVM honours, resolved on the host.
type Process struct {
	Args           []string `json:"args"`
	Env            []string `json:"env,omitempty"`
	Cwd            string   `json:"cwd"`
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additional_gids,omitempty"`
	Umask          *uint32  `json:"umask,omitempty"`
	Hostname       string   `json:"hostname,omitempty"`
	Rlimits        []Rlimit `json:"rlimits,omitempty"`
	// Terminal: the process gets a pseudo-terminal on the stdout port
	// (stderr goes there too, as on a terminal).
	Terminal    bool  `json:"terminal,omitempty"`
	ConsoleSize *Size `json:"console_size,omitempty"`
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS before exec.
	NoNewPrivileges bool `json:"no_new_privileges,omitempty"`

	// RootDevice holds the root file system (ext4, read-only); with
	// ReadOnly false the guest lays a tmpfs-backed overlay on it.
	RootDevice string  `json:"root_device"`
	ReadOnly   bool    `json:"readonly,omitempty"`
	Mounts     []Mount `json:"mounts,omitempty"`
	// Interfaces are the guest's NICs to configure before the process
	// starts; the loopback interface is always brought up, as container
	// runtimes do in a new network namespace.
	Interfaces []Interface `json:"interfaces,omitempty"`
}

// Interface is one NIC: the guest's interface whose MAC is MAC gets the
// IPv4 address Addr (ADDR/PREFIX, e.g. 10.0.0.2/24) and is brought up.
type Interface struct {
	MAC  string `json:"mac"`
	Addr string `json:"addr"`
}

// Rlimit is one resource limit; Type is the OCI name, e.g. RLIMIT_NOFILE.
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// Mount is a file system to mount inside the root before the process
// starts, in order, as the OCI spec lists them.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

// Size is a terminal's size.
type Size struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Exit is how the process ended: Code if it exited, Signal if a signal
// killed it.
type Exit struct {
	Code   int `json:"code"`
	Signal int `json:"signal,omitempty"`
}

// Started says the process is about to exec. The uptimes are the guest's
// CLOCK_BOOTTIME in milliseconds when init said ready and just before the
// exec: with the host's clock on the same events they split a start into
// the kernel's boot, init's setup and the container's own setup.
type Started struct {
	PID           int     `json:"pid"`
	ReadyUptimeMS float64 `json:"ready_uptime_ms,omitempty"`
	ExecUptimeMS  float64 `json:"exec_uptime_ms,omitempty"`
}

// Error says the process could not be started; Stage is where (mount,
// user, cwd, exec, ...). NotFound and NotExecutable follow a shell's
// statuses 127 and 126 for exec failures.
type Error struct {
	Stage         string `json:"stage"`
	Msg           string `json:"msg"`
	NotFound      bool   `json:"not_found,omitempty"`
	NotExecutable bool   `json:"not_executable,omitempty"`
}

func (e *Error) Error() string { return e.Stage + ": " + e.Msg }

// Message is one line on the control port; exactly one field is set.
type Message struct {
	// guest → host
	Ready   bool     `json:"ready,omitempty"`
	Started *Started `json:"started,omitempty"`
	Exit    *Exit    `json:"exit,omitempty"`
	Error   *Error   `json:"error,omitempty"`
	// host → guest
	Process  *Process `json:"process,omitempty"`
	StdinEOF bool     `json:"stdin_eof,omitempty"`
	// StdinBytes is how many bytes of input the host sent in all: the
	// bytes travel on another port than this message, so the guest
	// closes the process's stdin only once it has passed that many on.
	StdinBytes int64 `json:"stdin_bytes,omitempty"`
	Signal     int   `json:"signal,omitempty"`
	Resize     *Size `json:"resize,omitempty"`
}

// MaxLine bounds one message: a peer that sends more without a newline is
// broken, and neither side buffers it.
const MaxLine = 1 << 20

// Write sends m as one line.
func Write(w io.Writer, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ErrBadMessage is wrapped by Read's error for a line that is not a
// message; the lines after it can still be read.
var ErrBadMessage = errors.New("agent: bad message")

// Reader reads messages from a control port.
type Reader struct{ s *bufio.Scanner }

// NewReader reads r's lines as messages.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), MaxLine)
	return &Reader{s}
}

// Read returns the next message; io.EOF at the end of r. A line that is
// not a message is an ErrBadMessage naming it; a line longer than MaxLine
// ends the stream with bufio.ErrTooLong.
func (r *Reader) Read() (Message, error) {
	for r.s.Scan() {
		line := r.s.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return Message{}, fmt.Errorf("%w %.80q: %v", ErrBadMessage, line, err)
		}
		return m, nil
	}
	if err := r.s.Err(); err != nil {
		return Message{}, err
	}
	return Message{}, io.EOF
}
