// Package tap opens Linux tap interfaces (Documentation/networking/tuntap.rst)
// as virtio-net backends: every frame read or written carries a 12-byte
// virtio_net_hdr_v1 (virtio 1.2 §5.1.6) in front, so a virtio-net device
// passes its header through unchanged. Bringing the interface up and
// addressing it is the host administrator's job, not this package's.
package tap

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/rawsys"
)

// HeaderLen is the length of the virtio_net_hdr_v1 in front of every frame
// (virtio 1.2 §5.1.6: 12 bytes once VERSION_1 is negotiated).
const HeaderLen = 12

const (
	tunPath = "/dev/net/tun"
	// maxNameLen is IFNAMSIZ less the terminating NUL.
	maxNameLen = unix.IFNAMSIZ - 1
)

// Offload is a set of TUN_F_* flags (linux/if_tun.h): what the tap may hand
// to its reader without finishing it in software.
type Offload uint

const (
	OffloadCsum   Offload = unix.TUN_F_CSUM    // frames with a partial checksum
	OffloadTSO4   Offload = unix.TUN_F_TSO4    // TCPv4 segmentation
	OffloadTSO6   Offload = unix.TUN_F_TSO6    // TCPv6 segmentation
	OffloadTSOECN Offload = unix.TUN_F_TSO_ECN // TSO with the ECN CWR bit
)

// Errors Open wraps, with the fix in their text; test with errors.Is.
var (
	ErrNoTun      = errors.New("no " + tunPath + ": load the tun module (modprobe tun), or in a container create the node (mknod /dev/net/tun c 10 200)")
	ErrPermission = errors.New("needs CAP_NET_ADMIN, or a tap owned by this user (ip tuntap add NAME mode tap user $USER)")
)

// Tap is one open tap interface. Its descriptor is non-blocking and wrapped
// in an *os.File, so a blocked Read or Writev parks in the Go netpoller and
// a deadline interrupts it. Safe for one reader and one writer at a time.
//
// Reads and writes are raw system calls (package rawsys): the descriptor is
// non-blocking, and a normal call would wake the Go runtime's monitor thread
// for nearly every frame.
type Tap struct {
	f      *os.File
	rc     syscall.RawConn
	name   string
	closed atomic.Bool

	// The calls handed to rc are made once, in newTap: a closure made per
	// call escapes into the RawConn, an allocation per frame. Their
	// arguments and results are here, the reader's and the writer's apart.
	readFn  func(fd uintptr) bool
	rbuf    []byte
	rwait   bool
	rn      int
	rerr    error
	writeFn func(fd uintptr) bool
	wiov    [][]byte
	iovecs  []unix.Iovec // reused from frame to frame
	wn      int
	werr    error
}

// Open attaches to the tap interface name, creating it if it does not exist
// (a tap created here disappears on Close). The interface is left down.
func Open(name string) (*Tap, error) {
	if name == "" || len(name) > maxNameLen {
		return nil, fmt.Errorf("tap name %q: want 1 to %d bytes", name, maxNameLen)
	}
	fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(name, "open "+tunPath, err)
	}
	if err := setup(fd, name); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newTap(fd, name)
}

// newTap wraps a non-blocking descriptor that reads and writes one frame
// per call: a tap, or in tests a socket pair.
func newTap(fd int, name string) (*Tap, error) {
	f := os.NewFile(uintptr(fd), "tap "+name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tap %q: %w", name, err)
	}
	t := &Tap{f: f, rc: rc, name: name}
	t.readFn, t.writeFn = t.readRaw, t.writevRaw
	return t, nil
}

// setup is TUNSETIFF and TUNSETVNETHDRSZ on a fresh /dev/net/tun descriptor.
func setup(fd int, name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("tap name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return openError(name, "TUNSETIFF", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, HeaderLen); err != nil {
		return fmt.Errorf("tap %q: TUNSETVNETHDRSZ %d: %w", name, HeaderLen, err)
	}
	return nil
}

// openError names the fix for the ways opening a tap usually fails.
func openError(name, op string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("tap %q: %s: %w: %w", name, op, err, ErrNoTun)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("tap %q: %s: %w: %w", name, op, err, ErrPermission)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("tap %q: %s: %w (another process has it open)", name, op, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("tap %q: %s: %w (is it a tun device or a multi_queue tap?)", name, op, err)
	}
	return fmt.Errorf("tap %q: %s: %w", name, op, err)
}

// Name is the interface name.
func (t *Tap) Name() string { return t.name }

// SetOffload tells the tap which offloads its reader accepts (TUNSETOFFLOAD).
// Frames already queued keep the form they were queued in.
func (t *Tap) SetOffload(o Offload) error {
	var err error
	if cerr := t.rc.Control(func(fd uintptr) {
		err = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, int(o))
	}); cerr != nil {
		return fmt.Errorf("tap %q: %w", t.name, cerr)
	}
	if err != nil {
		return fmt.Errorf("tap %q: TUNSETOFFLOAD %#x: %w", t.name, uint(o), err)
	}
	return nil
}

// Read reads one frame, header first, waiting until one arrives or the read
// deadline passes (os.ErrDeadlineExceeded). The kernel cuts a frame longer
// than p short without saying so: read into a buffer one byte longer than the
// longest frame wanted to tell.
func (t *Tap) Read(p []byte) (int, error) { return t.read(p, true) }

// ReadNow is Read without the wait: it returns ErrNoFrame at once when the
// tap has no frame queued, so a caller can batch what is there.
func (t *Tap) ReadNow(p []byte) (int, error) { return t.read(p, false) }

func (t *Tap) read(p []byte, wait bool) (int, error) {
	t.rbuf, t.rwait = p, wait
	cerr := t.rc.Read(t.readFn)
	n, err := t.rn, t.rerr
	t.rbuf = nil // hold no guest memory between frames
	if cerr != nil {
		return 0, t.connErr(cerr)
	}
	switch {
	case err == unix.EAGAIN:
		return 0, ErrNoFrame
	case err != nil:
		return 0, fmt.Errorf("tap %q: read: %w", t.name, err)
	}
	return n, nil
}

// readRaw is read's call on the descriptor; false parks on the poller.
func (t *Tap) readRaw(fd uintptr) bool {
	t.rn, t.rerr = rawsys.Read(fd, t.rbuf)
	return !t.rwait || t.rerr != unix.EAGAIN
}

// connErr is a RawConn's error as os.File's methods report it: os.ErrClosed
// once Close was called, os.ErrDeadlineExceeded when the deadline passed.
func (t *Tap) connErr(err error) error {
	if t.closed.Load() {
		return fmt.Errorf("tap %q: %w", t.name, os.ErrClosed)
	}
	return fmt.Errorf("tap %q: %w", t.name, err)
}

// ErrNoFrame is ReadNow's answer when no frame is queued.
var ErrNoFrame = errors.New("no frame queued on the tap")

// Writev writes the concatenation of iov as one frame, header first.
func (t *Tap) Writev(iov [][]byte) (int, error) {
	t.wiov = iov
	cerr := t.rc.Write(t.writeFn)
	n, err := t.wn, t.werr
	t.wiov = nil
	if cerr != nil {
		return 0, t.connErr(cerr)
	}
	if err != nil {
		return n, fmt.Errorf("tap %q: write: %w", t.name, err)
	}
	return n, nil
}

// writevRaw is Writev's call on the descriptor; false parks on the poller.
func (t *Tap) writevRaw(fd uintptr) bool {
	t.wn, t.werr = rawsys.Writev(fd, t.wiov, &t.iovecs)
	return t.werr != unix.EAGAIN
}

// SetDeadline bounds Read and Writev, like os.File.SetDeadline; a deadline in
// the past wakes a blocked call at once. The zero time removes it.
func (t *Tap) SetDeadline(d time.Time) error { return t.f.SetDeadline(d) }

// Close detaches from the interface; a tap that Open created is destroyed.
func (t *Tap) Close() error {
	t.closed.Store(true)
	return t.f.Close()
}

// RunIoctls are the requests a Tap issues once it is open: only SetOffload's,
// when the guest's driver negotiates its features.
func RunIoctls() []uint64 { return []uint64{unix.TUNSETOFFLOAD} }
