package seccomp

import (
	bpf "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// always are the calls a running VM makes whatever its devices, each for a
// reason below. Everything that builds a VM (opening /dev/kvm, files and
// taps, creating the VM and its vCPUs, mapping guest RAM) happens before
// the filter and is not here.
var always = []string{
	// Devices and the console: reads and writes on fds opened before.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"fsync", "fdatasync", "fstat", "newfstatat", "lseek", "close", "fcntl",
	// A disk's discard and write-zeroes.
	"ftruncate", "fallocate",
	// A disk's requests; its ring is set up when the guest's driver
	// starts the device.
	"io_uring_enter", "io_uring_setup", "io_uring_register",
	// irqfds and ioeventfds, wired as the guest programs its devices;
	// Go's poller.
	"eventfd2", "pipe2",
	"epoll_pwait", "epoll_wait", "epoll_ctl", "epoll_create1", "ppoll", "poll",
	// The Go runtime: threads, memory, scheduling, signals, time.
	"futex", "sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep",
	"clock_gettime", "gettimeofday", "getpid", "gettid", "tgkill",
	"munmap", "madvise", "mincore", "getrandom",
	"rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
	"exit", "exit_group",
	// The C library's threads, in a cgo build.
	"rseq", "set_robust_list",
}

// files are the calls that create, replace and remove files (Rules.Files).
var files = []string{"openat", "renameat", "renameat2", "unlinkat", "fchmod"}

// conditional are the calls allowed only with some arguments.
func conditional() []bpf.NameWithConditions {
	return []bpf.NameWithConditions{
		// No new executable memory: the Go runtime never maps code after
		// start, an exploit would.
		{Name: "mmap", Conditions: bpf.ArgumentConditions{
			{Argument: 2, Operation: bpf.BitsNotSet, Value: unix.PROT_EXEC},
		}},
		{Name: "mprotect", Conditions: bpf.ArgumentConditions{
			{Argument: 2, Operation: bpf.BitsNotSet, Value: unix.PROT_EXEC},
		}},
		// Threads only (Go's new Ms): never a new process.
		{Name: "clone", Conditions: bpf.ArgumentConditions{
			{Argument: 0, Operation: bpf.BitsSet, Value: unix.CLONE_THREAD},
		}},
		// Signal handlers may change (signal.Notify, Stop, Reset), except
		// SIGSYS's, which reports a forbidden call.
		{Name: "rt_sigaction", Conditions: bpf.ArgumentConditions{
			{Argument: 0, Operation: bpf.NotEqual, Value: uint64(unix.SIGSYS)},
		}},
	}
}
