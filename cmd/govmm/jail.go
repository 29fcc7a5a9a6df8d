package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// jailFlags are the flags of govmm run that the jail's parent takes for
// itself: the govmm inside the jail gets the others.
var jailFlags = []string{"jail", "uid", "gid"}

// jailDevices are the device nodes a jailed govmm opens, made in the jail
// with the host's numbers and owned by its user.
var jailDevices = []string{"/dev/kvm", "/dev/net/tun"}

// runJailed runs govmm run again as uid:gid, chrooted into the jail, in new
// mount, PID and IPC namespaces, in the spirit of Firecracker's jailer: the
// jail holds only what the VM uses (the kernel, initrd and disks the flags
// name, relative to it), its two device nodes and a copy of govmm. The
// govmm inside builds the VM and confines itself as any other; this
// process only waits for it, passes signals on and returns its status.
func runJailed(f *runFlags, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if err := checkJail(f); err != nil {
		fmt.Fprintf(stderr, "govmm: %v\nRun 'govmm run --help' for usage.\n", err)
		return exitUsage
	}
	if err := prepareJail(f); err != nil {
		fmt.Fprintf(stderr, "govmm: --jail %s: %v\n", f.jail, err)
		return exitError
	}
	cmd := exec.Command("/govmm", append([]string{"run"}, withoutFlags(args, jailFlags)...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/", "HOME=/"}
	if term, ok := os.LookupEnv("TERM"); ok {
		cmd.Env = append(cmd.Env, "TERM="+term)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     f.jail,
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC,
		Credential: &syscall.Credential{Uid: f.uid, Gid: f.gid, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "govmm: --jail %s: start govmm in the jail: %v\n", f.jail, err)
		return exitError
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s) //nolint:errcheck // it may have ended: Wait says how
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode()
	}
	fmt.Fprintf(stderr, "govmm: the jailed govmm: %v\n", err)
	return exitError
}

// checkJail refuses, before anything is made, a jail that cannot work.
func checkJail(f *runFlags) error {
	if f.bundle != "" {
		return errors.New("--jail with --bundle is not supported: a bundle's image is built and cached outside any jail")
	}
	if !filepath.IsAbs(f.jail) {
		return fmt.Errorf("--jail %s: give an absolute path", f.jail)
	}
	if st, err := os.Stat(f.jail); err != nil || !st.IsDir() {
		return fmt.Errorf("--jail %s: not a directory: create it and put the kernel, initrd and disks in it", f.jail)
	}
	if !f.uidSet || !f.gidSet {
		return errors.New("--jail needs --uid and --gid: the user and group govmm runs as inside it")
	}
	if f.uid == 0 || f.gid == 0 {
		return errors.New("--jail: --uid and --gid must not be 0: the jail's govmm runs as an unprivileged user")
	}
	if os.Geteuid() != 0 {
		return errors.New("--jail needs root, to make the jail's devices, chroot and switch user: run govmm as root, or run it without --jail as a user in the kvm group")
	}
	paths := []string{f.cfg.Kernel, f.cfg.Initrd}
	for _, d := range f.cfg.Disks {
		paths = append(paths, d.Path)
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s: with --jail, give paths inside the jail from its root, e.g. /%s for %s", p, filepath.Base(p), filepath.Join(f.jail, filepath.Base(p)))
		}
		if _, err := os.Stat(filepath.Join(f.jail, p)); err != nil {
			return fmt.Errorf("%s is not in the jail: paths are inside it with --jail, and %s does not exist", p, filepath.Join(f.jail, p))
		}
	}
	return nil
}

// prepareJail makes the jail's device nodes and copies this govmm into it.
func prepareJail(f *runFlags) error {
	for _, dev := range jailDevices {
		var host unix.Stat_t
		if err := unix.Stat(dev, &host); err != nil {
			return fmt.Errorf("the host's %s: %w", dev, err)
		}
		node := filepath.Join(f.jail, dev)
		if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Stat(node, &st); err == nil && (st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != host.Rdev) {
			return fmt.Errorf("%s exists and is not the host's %s: remove it", node, dev)
		} else if err != nil {
			if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(host.Rdev)); err != nil {
				return fmt.Errorf("make %s: %w", node, err)
			}
		}
		if err := os.Chown(node, int(f.uid), int(f.gid)); err != nil {
			return err
		}
	}
	return copyExecutable(filepath.Join(f.jail, "govmm"))
}

// copyExecutable puts this program at path, replacing what is there.
func copyExecutable(path string) error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".govmm-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return fmt.Errorf("copy govmm into the jail: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// withoutFlags returns args without the named flags and their values, in
// either form (--name value, --name=value).
func withoutFlags(args []string, names []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		drop := false
		for _, n := range names {
			switch {
			case a == "--"+n:
				drop = true
				i++ // and its value
			case strings.HasPrefix(a, "--"+n+"="):
				drop = true
			}
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}
