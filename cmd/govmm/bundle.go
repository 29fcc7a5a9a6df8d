package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/govmm/govmm"
	"github.com/govmm/govmm/cmd/govmm/internal/agenthost"
	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
	"github.com/govmm/govmm/guest/agent"
)

// Exit statuses of run --bundle besides the process's own (0-255, or
// 128+N when signal N killed it), as docker run has them.
const (
	exitVMEnded     = 124 // the VM ended before the process: guest crash, reboot, or stopped from the host
	exitBundleError = 125 // govmm could not run the bundle (the message says why)
	exitNotExec     = 126 // the process's executable could not be run
	exitNotFound    = 127 // the process's executable does not exist
)

// stopGrace is how long the process has to exit after a SIGTERM or SIGINT
// it was sent before govmm stops the VM.
const stopGrace = 10 * time.Second

// powerOffGrace is how long the guest has to power off once it reported
// the process's end.
const powerOffGrace = 10 * time.Second

// crashLogSize is how much of the guest's serial console govmm keeps, to
// print when the VM ends before the process.
const crashLogSize = 32 << 10

// cacheDir is where govmm keeps the bundles' root file system images and
// finds the kernel and initramfs `make` fetched: $GOVMM_CACHE, else
// ~/.cache/govmm.
func cacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "govmm")
	}
	return filepath.Join(os.TempDir(), "govmm-cache")
}

// bundleDefaults fills in the kernel and initramfs a bundle boots with
// when the flags name none: the Debian cloud kernel and govmm's guest
// initramfs from the cache.
func bundleDefaults(f *runFlags) error {
	cache := cacheDir()
	if f.cfg.Kernel == "" {
		f.cfg.Kernel = filepath.Join(cache, "kernel-cloud", "vmlinuz")
	}
	if f.cfg.Initrd == "" {
		f.cfg.Initrd = filepath.Join(cache, "guest", "initramfs.cpio.gz")
	}
	for _, p := range []string{f.cfg.Kernel, f.cfg.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--bundle boots govmm's guest kernel and initramfs, and %s is missing: run `make kernel initramfs` in govmm's source tree, or pass --kernel and --initrd", p)
		}
	}
	if f.console != "serial" {
		return errors.New("--console: with --bundle the serial console is the guest's crash log and the process's stdio has its own ports; leave --console out")
	}
	return nil
}

// runBundle runs the bundle's process in a microVM and returns its exit
// status.
func runBundle(f *runFlags, stdin *os.File, stdout, stderr io.Writer) int {
	b, err := bundle.Load(f.bundle)
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitBundleError
	}
	for _, u := range b.Unsupported {
		fmt.Fprintf(stderr, "govmm: bundle: %s\n", u)
	}
	cfg := f.cfg
	if b.Memory != 0 {
		cfg.Memory = b.Memory
	}
	if b.CPUs != 0 {
		// A quota above the host's CPUs does not limit a container either.
		cfg.CPUs = min(b.CPUs, runtime.NumCPU())
	}
	image := f.rootImage
	if image == "" {
		image, err = b.RootImage(filepath.Join(cacheDir(), "bundles"))
	} else {
		err = checkRootImage(image)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitBundleError
	}
	// The root image first, then a disk per block device mount, as the
	// guest's mounts name them (/dev/vda, /dev/vdb, ...), then --disk's.
	disks := []govmm.Disk{{Path: image, ReadOnly: true, Serial: "govmm-bundle-root"}}
	for _, d := range b.Disks {
		disks = append(disks, govmm.Disk{Path: d.Path, ReadOnly: d.ReadOnly})
	}
	cfg.Disks = append(disks, cfg.Disks...)
	cfg.NICs = slices.Clone(cfg.NICs)
	var ifs []agent.Interface
	for i, addr := range f.nicAddrs {
		if !addr.IsValid() {
			continue
		}
		if cfg.NICs[i].MAC == nil {
			cfg.NICs[i].MAC = randomMAC() // the guest finds the NIC by it
		}
		ifs = append(ifs, agent.Interface{MAC: cfg.NICs[i].MAC.String(), Addr: addr.String()})
	}
	base := agenthost.Cmdline
	if f.cmdlineSet {
		base = f.cfg.Cmdline
	}
	// Config.Ports' order is the guest's hvc numbering.
	cfg.Cmdline = agenthost.KernelCmdline(base)
	crashLog := &tail{max: crashLogSize}
	cfg.Console = crashLog

	tty := b.Process.Terminal && term.IsTerminal(int(stdin.Fd()))
	var size *agent.Size
	if tty {
		if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
			size = &agent.Size{Rows: uint16(h), Cols: uint16(w)}
		}
	}
	controlIn, controlFeed := io.Pipe()
	controlOut, controlFromGuest := io.Pipe()
	stdinIn, stdinFeed := io.Pipe()
	var first firstWrite
	cfg.Ports = []govmm.Port{
		{In: controlIn, Out: controlFromGuest},
		{In: stdinIn, Out: first.wrap(stdout)},
		{In: nil, Out: first.wrap(stderr)},
	}
	cfg.Confine = f.confinement(stderr, exitBundleError)
	vm, err := govmm.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitBundleError
	}
	warnHugePages(stderr, vm.HugePages())

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var s *agenthost.Session
	var saved *term.State
	feed := func() {
		var sent int64
		if tty {
			// Ctrl-A x still stops the VM; everything else, Ctrl-C
			// included, goes to the process's terminal.
			forwardEscaped(stdin, stderr, func(p []byte) {
				n, _ := stdinFeed.Write(p) // fails only once the VM is gone
				sent += int64(n)
			}, func() { cancel(errors.New("Ctrl-A x typed")) })
		} else {
			sent, _ = io.Copy(stdinFeed, stdin) // a read error ends input like EOF
		}
		s.StdinDone(sent)
	}
	proc := agenthost.Process(b, size)
	proc.Interfaces = ifs
	s = agenthost.NewSession(proc, controlFeed, controlOut, feed)
	if tty {
		if saved, err = term.MakeRaw(int(stdin.Fd())); err != nil {
			fmt.Fprintf(stderr, "govmm: put the terminal in raw mode: %v\n", err)
			tty = false
		}
	}
	stopSignals := forwardSignals(s, stdin, tty, cancel)
	stopStats := func() {}
	if f.statsPath != "" {
		stopStats = statsOnSIGUSR1(stderr, func() error {
			st, err := runningStats(vm)
			if err != nil {
				return err
			}
			st.BundleStart = newBundleStart(s.Timeline(), first.time())
			return writeStatsFile(f.statsPath, st)
		})
	}
	go func() {
		// A guest that reported the process's end but does not power
		// off is stopped: the status is known.
		select {
		case <-s.Ended():
			time.Sleep(powerOffGrace)
			cancel(errors.New("the guest did not power off after the process ended"))
		case <-ctx.Done():
		}
	}()
	res, runErr := vm.Run(ctx)
	stopStats()
	stopSignals()
	if saved != nil {
		term.Restore(int(stdin.Fd()), saved) //nolint:errcheck // best effort on the way out
	}
	// The VM is closed: no more control output will come. What the guest
	// wrote before it powered off is in the pipe; read it to the end.
	controlFromGuest.Close()
	<-s.Done()
	s.End()
	controlIn.Close()
	stdinIn.Close()
	if f.statsPath != "" {
		st := resultStats(res)
		st.BundleStart = newBundleStart(s.Timeline(), first.time())
		if err := writeStatsFile(f.statsPath, st); err != nil {
			fmt.Fprintf(stderr, "govmm: %v\n", err)
		}
	}
	return bundleStatus(s, res, runErr, crashLog, stderr)
}

// checkRootImage checks that --root-image names an ext4 image: a regular
// file (or a block device) with ext2/3/4's superblock magic.
func checkRootImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--root-image: %w", err)
	}
	defer f.Close()
	var magic [2]byte
	// The superblock starts at byte 1024; its magic 0xEF53 at offset 56.
	if _, err := f.ReadAt(magic[:], 1024+56); err != nil || magic != [2]byte{0x53, 0xef} {
		return fmt.Errorf("--root-image %s: not an ext4 image (no ext2/3/4 superblock): make one with mke2fs -t ext4 -d ROOTFS FILE SIZE", path)
	}
	return nil
}

// forwardSignals passes SIGINT, SIGTERM and SIGHUP to the process and
// stops the VM stopGrace after the first; SIGWINCH passes the terminal's
// size. The returned function stops forwarding.
func forwardSignals(s *agenthost.Session, stdin *os.File, tty bool, cancel context.CancelCauseFunc) func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGWINCH)
	done := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGWINCH {
					if w, h, err := term.GetSize(int(stdin.Fd())); tty && err == nil {
						s.Resize(agent.Size{Rows: uint16(h), Cols: uint16(w)})
					}
					continue
				}
				s.Signal(sig.(syscall.Signal))
				once.Do(func() {
					time.AfterFunc(stopGrace, func() {
						cancel(fmt.Errorf("the process did not exit within %v of %v", stopGrace, sig))
					})
				})
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// bundleStatus prints how the run ended and returns govmm's exit status:
// the process's own when it ended, one of run --bundle's statuses when it
// did not.
func bundleStatus(s *agenthost.Session, res govmm.Result, runErr error, crashLog *tail, stderr io.Writer) int {
	exit, failure, _, bad := s.Outcome()
	switch {
	case exit != nil && exit.Signal != 0:
		return 128 + exit.Signal
	case exit != nil:
		return exit.Code & 0xff
	case failure != nil:
		fmt.Fprintf(stderr, "govmm: the container's process did not start: %s\n", failure.Error())
		switch {
		case failure.NotFound:
			return exitNotFound
		case failure.NotExecutable:
			return exitNotExec
		}
		return exitBundleError
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", runErr)
		return exitBundleError
	}
	if bad != nil {
		fmt.Fprintf(stderr, "govmm: the guest sent a malformed control message: %v\n", bad)
	}
	fmt.Fprintf(stderr, "govmm: the VM ended before the container's process (%s: %s)\n", res.Reason, res.Detail)
	if log := crashLog.String(); log != "" {
		fmt.Fprintf(stderr, "govmm: the guest's console, last %d bytes:\n%s", len(log), log)
		if !strings.HasSuffix(log, "\n") {
			fmt.Fprintln(stderr)
		}
	}
	return exitVMEnded
}

// tail keeps the last max bytes written to it, in a ring: the serial
// console writes a byte at a time.
type tail struct {
	mu   sync.Mutex
	max  int
	ring []byte
	next int // where the next byte goes
	full bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ring == nil {
		t.ring = make([]byte, t.max)
	}
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	for len(p) > 0 {
		c := copy(t.ring[t.next:], p)
		p = p[c:]
		t.next += c
		if t.next == t.max {
			t.next, t.full = 0, true
		}
	}
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return string(t.ring[:t.next])
	}
	return string(t.ring[t.next:]) + string(t.ring[:t.next])
}
