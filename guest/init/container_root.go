package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/agent"
)

// enterContainerRoot mounts the container's root file system — the
// read-only image under a tmpfs overlay, the mount made read-only when the
// spec asks for a read-only root — and the spec's mounts inside it, then
// makes it init's root, as switch_root does: the initramfs's files are
// deleted and what stays of it lies underneath, out of reach of a path.
func enterContainerRoot(p agent.Process) error {
	lower := filepath.Join(containerDir, "image")
	root := filepath.Join(containerDir, "root")
	for _, d := range []string{lower, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := waitFor(p.RootDevice, deviceWait); err != nil {
		return err
	}
	if err := unix.Mount(p.RootDevice, lower, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount %s: %w", p.RootDevice, err)
	}
	// A tmpfs overlay also under a read-only root: the spec's mount points
	// may be missing from the image, and, as runc does, they are made
	// before the root turns read-only.
	rw := filepath.Join(containerDir, "rw")
	if err := os.MkdirAll(rw, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", rw, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount the writable layer: %w", err)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(rw, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, rw, rw)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the overlay (%s): %w", opts, err)
	}
	for _, m := range p.Mounts {
		if err := mountIn(root, m); err != nil {
			return err
		}
	}
	if p.ReadOnly {
		if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make the root read-only: %w", err)
		}
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	freeInitramfs()
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// mountIn mounts m inside root, creating its mount point. A /dev that the
// spec puts on a tmpfs gets the device nodes and links every container
// runtime makes there.
func mountIn(root string, m agent.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	dest := filepath.Join(root, filepath.Clean(m.Destination))
	typ := m.Type
	if typ == "cgroup" {
		typ = "cgroup2" // the guest has the unified hierarchy only
	}
	flags, data := mountOptions(m.Options)
	if typ == "bind" || flags&unix.MS_BIND != 0 {
		return fmt.Errorf("mount %s: bind mounts of host paths do not reach a VM", m.Destination)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("mount point %s: %w", m.Destination, err)
	}
	src := m.Source
	if src == "" {
		src = typ
	}
	if strings.HasPrefix(src, "/dev/vd") {
		// A disk the host attached for this mount: its driver may still
		// be probing it.
		if err := waitFor(src, deviceWait); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if err := unix.Mount(src, dest, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s, %q): %w", m.Destination, typ, data, err)
	}
	if m.Destination == "/dev" && typ == "tmpfs" {
		return populateDev(dest)
	}
	return nil
}

// mountFlags are the OCI mount options that are mount(2) flags; the rest
// go to the file system as data. A flag name sets its bits, a name in
// clearFlags clears them.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"sync": unix.MS_SYNCHRONOUS, "dirsync": unix.MS_DIRSYNC, "mand": unix.MS_MANDLOCK,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME, "bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC,
}

var clearFlags = map[string]uintptr{
	"rw": unix.MS_RDONLY, "suid": unix.MS_NOSUID, "dev": unix.MS_NODEV, "exec": unix.MS_NOEXEC,
	"async": unix.MS_SYNCHRONOUS, "nomand": unix.MS_MANDLOCK, "atime": unix.MS_NOATIME,
	"diratime": unix.MS_NODIRATIME, "norelatime": unix.MS_RELATIME, "nostrictatime": unix.MS_STRICTATIME,
}

// mountOptions splits OCI mount options into mount flags and data.
func mountOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else if f, ok := clearFlags[o]; ok {
			flags &^= f
		} else if o != "" && o != "defaults" {
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

// populateDev makes the device nodes and links a container's /dev has
// (as runc does on a tmpfs /dev).
func populateDev(dev string) error {
	for _, n := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		if err := unix.Mknod(filepath.Join(dev, n.name), unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		// mknod's mode passes through the umask.
		os.Chmod(filepath.Join(dev, n.name), 0o666) //nolint:errcheck // best effort
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
		"ptmx": "pts/ptmx", "core": "/proc/kcore",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link /dev/%s: %w", name, err)
		}
	}
	return nil
}

// rlimitByName maps the OCI names to resources.
var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// errNotFound: no executable by that name on the process's PATH.
var errNotFound = errors.New("executable file not found")

// lookPath finds the process's executable as execvp would with the
// process's own PATH (agent.DefaultPath if it has none).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = agent.DefaultPath
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in PATH %s", name, errNotFound, path)
}

// lookupEnv reads a variable from an environment list; the last wins, as
// getenv's callers see it after execve.
func lookupEnv(env []string, key string) (string, bool) {
	val, ok := "", false
	for _, kv := range env {
		if k, v, found := strings.Cut(kv, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// homeOf is the uid's home in /etc/passwd, "/" if it has none: what runc
// gives a process whose environment has no HOME.
func homeOf(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	return homeIn(f, uid)
}

// homeIn reads the uid's home from a passwd file.
func homeIn(passwd io.Reader, uid uint32) string {
	s := bufio.NewScanner(passwd)
	for s.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(s.Text(), ":")
		if len(fields) >= 6 && fields[2] == strconv.FormatUint(uint64(uid), 10) && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}

// mountsDevpts tells whether the spec gives the container a devpts of its
// own at /dev/pts, where its terminal belongs.
func mountsDevpts(mounts []agent.Mount) bool {
	for _, m := range mounts {
		if m.Type == "devpts" && filepath.Clean(m.Destination) == "/dev/pts" {
			return true
		}
	}
	return false
}

// guestPTY opens a terminal in a devpts instance of the guest's, for a
// spec that mounts none: the process reaches the slave only through its
// descriptors, as under a runtime's console socket.
func guestPTY(size *agent.Size) (master, slave *os.File, err error) {
	if err := os.MkdirAll("/dev/pts", 0o755); err != nil {
		return nil, nil, err
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return nil, nil, fmt.Errorf("mount devpts: %w", err)
	}
	return openPTY("/dev/pts/ptmx", "/dev/pts", size)
}

// openPTY opens a pseudo-terminal pair through ptmx, a devpts's
// multiplexer, whose slaves are in pts.
func openPTY(ptmx, pts string, size *agent.Size) (master, slave *os.File, err error) {
	m, err := os.OpenFile(ptmx, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile(filepath.Join(pts, strconv.Itoa(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if size != nil {
		setSize(m, *size)
	}
	return m, s, nil
}

func setSize(pty *os.File, sz agent.Size) {
	unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Rows, Col: sz.Cols}) //nolint:errcheck // a size is advice
}
