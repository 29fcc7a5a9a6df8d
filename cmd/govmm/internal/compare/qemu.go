package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govmm/govmm/cmd/govmm/internal/agenthost"
	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
	"github.com/govmm/govmm/guest/agent"
)

// QEMU drives a classic VM: QEMU's PC machine on KVM booting what govmm
// boots (the kernel, govmm's guest initramfs, the bundle's root image on a
// virtio disk) and running the process through the same agent ports, so
// that the table shows what a microVM saves over a full machine rather
// than over a different guest. compare is QEMU's agent host: it speaks to
// the guest's init over QEMU's unix sockets as govmm does over its pipes.
type QEMU struct {
	Path, Kernel, Initrd, Memory string
	Images                       string // the root images' cache, govmm's
	RootImage                    string // the bundle's root image, made ready beforehand; empty: from Images
}

func (q *QEMU) setRootImage(p string) { q.RootImage = p }

// NewQEMU finds qemu-system-x86_64 by name or path.
func NewQEMU(name, kernel, initrd, memory, images string) (*QEMU, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("runtime qemu: %s is not installed (%v): apt-get install qemu-system-x86, or pass --qemu", name, err)
	}
	return &QEMU{Path: p, Kernel: kernel, Initrd: initrd, Memory: memory, Images: images}, nil
}

func (q *QEMU) Name() string { return "qemu" }

// Start's clock starts before the bundle is read and its root image found,
// as govmm run --bundle's does: both do that work per launch (the image's
// check only when it was not made ready beforehand).
func (q *QEMU) Start(dir, id string, nic *NIC) (*Instance, error) {
	t0 := time.Now()
	b, err := bundle.Load(dir)
	if err != nil {
		return nil, err
	}
	image := q.RootImage
	if image == "" {
		if image, err = b.RootImage(q.Images); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "compare-qemu-")
	if err != nil {
		return nil, err
	}
	vm := qemuVM{Kernel: q.Kernel, Initrd: q.Initrd, Image: image, Memory: q.Memory, CPUs: 1,
		Cmdline: agenthost.KernelCmdline(agenthost.Cmdline), Dir: tmp, Disks: b.Disks}
	proc := agenthost.Process(b, nil)
	if nic != nil {
		vm.Tap, vm.MAC = nic.Tap, qemuMAC
		proc.Interfaces = []agent.Interface{{MAC: qemuMAC, Addr: nic.Addr.String()}}
	}
	// The bundle's limits size the VM, as they size govmm's.
	if b.Memory != 0 {
		vm.Memory = strconv.FormatUint((b.Memory+(1<<20)-1)>>20, 10) + "M"
	}
	if b.CPUs != 0 {
		vm.CPUs = min(b.CPUs, runtime.NumCPU())
	}
	in, err := start(id, dir, append([]string{q.Path}, vm.args()...), nil, t0)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	in.guest = &guestConn{dir: tmp}
	if err := in.guest.dial(in); err != nil {
		in.cmd.Process.Kill()
		q.Release(in)
		return nil, err
	}
	in.guest.talk(in, proc)
	return in, nil
}

func (q *QEMU) Exited(ctx context.Context, in *Instance) error {
	if err := in.wait(ctx); err != nil {
		return fmt.Errorf("qemu: %v%s", err, in.stderrNote())
	}
	if err := in.drain(ctx); err != nil {
		return err
	}
	return in.guest.exited(ctx, in)
}

// Release closes the ports and deletes the sockets once QEMU is gone.
func (q *QEMU) Release(in *Instance) error {
	in.guest.close()
	in.close()
	return nil
}

// Teardown sends the process SIGTERM over the control port, which is what
// govmm does with the SIGTERM govmm's own teardown sends it: the process
// dies of it, the guest reports that and powers off, and QEMU exits with
// its VM. A guest whose process never started has nothing to signal:
// QEMU is killed.
func (q *QEMU) Teardown(in *Instance) error {
	defer q.Release(in)
	s := in.guest.session
	if _, _, started, _ := s.Outcome(); !started {
		in.cmd.Process.Kill()
		in.wait(context.Background())
		return nil
	}
	s.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := in.wait(ctx); err != nil {
		in.cmd.Process.Kill()
		return fmt.Errorf("qemu teardown: %v%s", err, in.stderrNote())
	}
	if err := in.guest.ended(ctx); err != nil {
		return err
	}
	if exit, _, _, _ := s.Outcome(); exit == nil || exit.Signal != int(syscall.SIGTERM) {
		return fmt.Errorf("qemu teardown: the process did not die of SIGTERM (%+v)%s", exit, in.stderrNote())
	}
	return nil
}

// Usage: QEMU's PSS (the guest RAM it has touched included) and its Rss
// outside the guest RAM mapping, measured as govmm's.
func (q *QEMU) Usage(in *Instance) (Usage, error) { return vmmUsage(in.cmd.Process.Pid) }

func (q *QEMU) CPUSeconds(in *Instance) (float64, error) {
	return processCPUSeconds(in.cmd.Process.Pid)
}

// guestConn is compare's end of a classic VM's agent ports: the unix
// sockets QEMU listens on for the three virtio consoles.
type guestConn struct {
	dir                     string // the sockets and the serial console's log
	control, stdout, stderr net.Conn
	session                 *agenthost.Session
	closed                  bool
}

// portSockets are the sockets of the guest's hvc0..hvc2, agenthost.Ports'
// control, stdout and stderr.
var portSockets = []string{"control.sock", "stdout.sock", "stderr.sock"}

const consoleLog = "console.log"

// dialTimeout bounds how long QEMU may take to open its sockets.
const dialTimeout = time.Minute

// dial connects to the three sockets once QEMU listens on them: before
// the guest has booted far enough to write to its consoles, which QEMU
// drops while no one is connected.
func (g *guestConn) dial(in *Instance) error {
	deadline := time.Now().Add(dialTimeout)
	conns := make([]net.Conn, len(portSockets))
	for i, name := range portSockets {
		path := filepath.Join(g.dir, name)
		for {
			c, err := net.Dial("unix", path)
			if err == nil {
				conns[i] = c
				break
			}
			select {
			case <-in.done:
				return fmt.Errorf("qemu exited before it opened %s: %v%s", name, in.waitErr, in.stderrNote())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("qemu did not open %s within %v: %v%s", name, dialTimeout, err, in.stderrNote())
			}
			time.Sleep(time.Millisecond)
		}
	}
	g.control, g.stdout, g.stderr = conns[0], conns[1], conns[2]
	return nil
}

// talk starts the session: the workload has no input, so standard input
// ends as soon as the guest is ready; stdout goes to Lines, stderr to the
// instance's error log.
func (g *guestConn) talk(in *Instance, proc agent.Process) {
	made := make(chan struct{})
	g.session = agenthost.NewSession(proc, g.control, g.control, func() {
		<-made
		g.session.StdinDone(0)
	})
	close(made)
	go io.Copy(in.errLog, g.stderr) //nolint:errcheck // the log is for messages only
	go in.readLines(g.stdout)
}

// ended waits for the control port to close: QEMU has exited, and every
// message the guest sent has been read.
func (g *guestConn) ended(ctx context.Context) error {
	select {
	case <-g.session.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("qemu: the control port is still open: %w", ctx.Err())
	}
}

// exited checks how a process that ran to its end ended.
func (g *guestConn) exited(ctx context.Context, in *Instance) error {
	if err := g.ended(ctx); err != nil {
		return err
	}
	exit, failure, _, _ := g.session.Outcome()
	switch {
	case failure != nil:
		return fmt.Errorf("qemu: the process did not start: %s", failure.Error())
	case exit == nil:
		return fmt.Errorf("qemu: the VM ended before the process%s", in.stderrNote())
	case exit.Code != 0 || exit.Signal != 0:
		return fmt.Errorf("qemu: the process ended with %+v%s", *exit, in.stderrNote())
	}
	return nil
}

// console is the tail of the guest's serial console, for messages.
func (g *guestConn) console() string {
	b, err := os.ReadFile(filepath.Join(g.dir, consoleLog))
	if err != nil || len(b) == 0 {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func (g *guestConn) close() {
	if g.closed {
		return
	}
	g.closed = true
	for _, c := range []net.Conn{g.control, g.stdout, g.stderr} {
		if c != nil {
			c.Close()
		}
	}
	if g.session != nil {
		g.session.End()
	}
	if err := os.RemoveAll(g.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "govmm compare: %v\n", err)
	}
}

// qemuVM is one classic VM: QEMU's PC machine on KVM with only what the
// guest needs, no firmware menus, network, display or user config.
type qemuVM struct {
	Kernel, Initrd, Image, Memory, Cmdline string
	CPUs                                   int
	Dir                                    string        // sockets and the console log
	Disks                                  []bundle.Disk // after the root image, in the guest's order
	Tap, MAC                               string        // a virtio NIC on Tap, when Tap is set
}

// qemuMAC is the classic VM's NIC address, for the guest to find it by.
const qemuMAC = "52:54:00:c0:ff:ee"

// args is QEMU's command line. Each port is a virtio-serial device of its
// own with one port: without a second port QEMU does not offer
// VIRTIO_CONSOLE_F_MULTIPORT, so the guest sees a plain console, an hvc
// numbered in PCI order, as govmm's virtio consoles are. -no-reboot: a
// guest that panics (panic=-1 reboots) ends the VM, as it ends govmm's.
func (v qemuVM) args() []string {
	a := []string{
		"-M", "pc", "-accel", "kvm", "-cpu", "host",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-m", v.Memory, "-smp", strconv.Itoa(v.CPUs),
		"-kernel", v.Kernel, "-initrd", v.Initrd, "-append", v.Cmdline,
		"-serial", "file:" + filepath.Join(v.Dir, consoleLog),
		"-drive", "file=" + optValue(v.Image) + ",if=none,id=root,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=root,serial=govmm-bundle-root",
	}
	// QEMU's defaults otherwise, as in make bench: writeback cache,
	// thread pool I/O, no vhost.
	for i, d := range v.Disks {
		id := "disk" + strconv.Itoa(i+1)
		drive := "file=" + optValue(d.Path) + ",if=none,id=" + id + ",format=raw"
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		a = append(a, "-drive", drive, "-device", "virtio-blk-pci,drive="+id)
	}
	if v.Tap != "" {
		a = append(a, "-netdev", "tap,id=net0,ifname="+optValue(v.Tap)+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=net0,mac="+v.MAC)
	}
	a = append(a, "-device", "virtio-rng-pci")
	for i, name := range portSockets {
		n := strconv.Itoa(i)
		a = append(a,
			"-chardev", "socket,id=c"+n+",path="+optValue(filepath.Join(v.Dir, name))+",server=on,wait=off",
			"-device", "virtio-serial-pci,id=vs"+n+",max_ports=1",
			"-device", "virtconsole,bus=vs"+n+".0,chardev=c"+n)
	}
	return a
}

// optValue escapes a value inside QEMU's comma-separated options.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// vmmUsage is a VMM process's PSS and its Rss outside guest RAM.
func vmmUsage(pid int) (Usage, error) {
	pss, _, err := processPSS(pid)
	if err != nil {
		return Usage{}, err
	}
	o, err := processOverhead(pid)
	if err != nil {
		return Usage{}, err
	}
	return Usage{PSS: pss, Cgroup: -1, Overhead: o}, nil
}
