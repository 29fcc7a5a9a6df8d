package seccomp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The filter holds for the whole process and for good, so each case runs
// in a child: this test binary again, with helperEnv naming the case.
const helperEnv = "GOVMM_SECCOMP_HELPER"

const helperStatus = 42

// allowedIoctl is a request the helpers' filter allows: FIONREAD.
const allowedIoctl = 0x541B // FIONREAD

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	os.Exit(m.Run())
}

// helpers are the children's programs, run after the filter is installed.
var helpers = map[string]func() error{
	// What a running VM's Go runtime does: threads, GC, timers, pipes.
	"allowed": func() error {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			return err
		}
		done := make(chan int, 8)
		for i := 0; i < 8; i++ {
			go func() {
				runtime.LockOSThread() // a new thread each
				b := make([]byte, 1<<20)
				time.Sleep(10 * time.Millisecond)
				done <- len(b)
			}()
		}
		for i := 0; i < 8; i++ {
			<-done
		}
		runtime.GC()
		if _, err := unix.Write(fds[1], []byte("x")); err != nil {
			return err
		}
		if _, err := unix.IoctlGetInt(fds[0], allowedIoctl); err != nil {
			return fmt.Errorf("allowed ioctl: %w", err)
		}
		return nil
	},
	"socket": func() error {
		_, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		return fmt.Errorf("socket returned: %v", err)
	},
	"ioctl": func() error {
		_, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
		return fmt.Errorf("ioctl TIOCGWINSZ returned: %v", err)
	},
	"fork": func() error {
		// A fork, as exec's first step, without Go's fork path, which
		// blocks signals, so that the kernel kills on SIGSYS unreported.
		pid, _, errno := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
		if pid == 0 && errno == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		return fmt.Errorf("clone for a new process returned: %d %v", pid, errno)
	},
	"mmap-exec": func() error {
		_, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_ANON|unix.MAP_PRIVATE)
		return fmt.Errorf("mmap PROT_EXEC returned: %v", err)
	},
	"open": func() error {
		f, err := os.Open("/etc/hostname")
		if err == nil {
			f.Close()
		}
		return fmt.Errorf("open returned: %v", err)
	},
	"sigsys-handler": func() error {
		// Replacing the reporter would hide the next forbidden call.
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSYS), 0, 0, 8, 0, 0)
		return fmt.Errorf("rt_sigaction(SIGSYS) returned: %v", errno)
	},
}

func runHelper(name string) int {
	fn, ok := helpers[name]
	if name == "other-filter" {
		fn, ok = func() error { return nil }, true
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "no helper %q\n", name)
		return 1
	}
	// As govmm run does first: no_new_privs on every thread.
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e == syscall.ENOTSUP {
		// A cgo build (-race): one thread only; root's CAP_SYS_ADMIN
		// lets the filter synchronise anyway.
		unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) //nolint:errcheck // Install says
	}
	if name == "other-filter" {
		// A thread with a filter of its own is outside the process's
		// filter tree: TSYNC cannot reach it.
		ready := make(chan error)
		go func() {
			runtime.LockOSThread()
			ready <- allowAllOnThisThread()
			select {}
		}()
		if err := <-ready; err != nil {
			fmt.Fprintf(os.Stderr, "other filter: %v\n", err)
			return 1
		}
	}
	if err := Install(Rules{Ioctls: []uint64{allowedIoctl}, Status: helperStatus}); err != nil {
		fmt.Fprintf(os.Stderr, "install: %v\n", err)
		return 1
	}
	errc := make(chan error, 1)
	go func() { errc <- fn() }() // a thread other than the installer's
	if err := <-errc; err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "helper: ok")
	return 0
}

func runChild(t *testing.T, name string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func skipWithoutSeccomp(t *testing.T) {
	if raceBuild {
		t.Skip("the race detector's own system calls are not govmm's: run without -race (make unit does)")
	}
	if code, out := runChild(t, "allowed"); strings.Contains(out, ErrUnsupported.Error()) {
		if os.Getenv("GOVMM_REQUIRE_SECCOMP") != "" {
			t.Fatalf("GOVMM_REQUIRE_SECCOMP is set: %s (status %d)", out, code)
		}
		t.Skipf("no seccomp here: %s (status %d)", out, code)
	}
}

func TestAllowedWorkRunsUnderTheFilter(t *testing.T) {
	skipWithoutSeccomp(t)
	code, out := runChild(t, "allowed")
	if code != 0 || !strings.Contains(out, "helper: ok") {
		t.Fatalf("status %d, stderr:\n%s", code, out)
	}
}

func TestForbiddenCallStopsTheProcessAndNamesIt(t *testing.T) {
	skipWithoutSeccomp(t)
	for name, want := range map[string]string{
		"socket":         "system call 41 (socket)",
		"ioctl":          "system call 16 (ioctl)",
		"fork":           "system call 56 (clone)",
		"mmap-exec":      "system call 9 (mmap)",
		"open":           "system call 257 (openat)",
		"sigsys-handler": "system call 13 (rt_sigaction)",
	} {
		t.Run(name, func(t *testing.T) {
			code, out := runChild(t, name)
			if code != helperStatus || !strings.Contains(out, want) || strings.Contains(out, "helper:") {
				t.Fatalf("status %d (want %d), stderr (want %q, and no line from the helper after the call):\n%s", code, helperStatus, want, out)
			}
		})
	}
}

// A thread TSYNC cannot reach fails the install, and no thread is left
// half filtered without saying so.
func TestInstallFailsWhereAThreadHasAnotherFilter(t *testing.T) {
	skipWithoutSeccomp(t)
	code, out := runChild(t, "other-filter")
	if code != 1 || !strings.Contains(out, "could not take the filter") {
		t.Fatalf("status %d, stderr:\n%s", code, out)
	}
}

// Every name of the Files list is a system call the assembler knows.
func TestFilesListAssembles(t *testing.T) {
	if _, err := program(Rules{Files: true}); err != nil {
		t.Fatal(err)
	}
}

func TestNameOfACall(t *testing.T) {
	if got := Name(16); got != "ioctl" {
		t.Errorf("Name(16) = %q, want ioctl", got)
	}
	if got := Name(100000); got != "unknown" {
		t.Errorf("Name(100000) = %q, want unknown", got)
	}
}
