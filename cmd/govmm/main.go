// Command govmm runs a Linux microVM on KVM. This file and its siblings only
// parse flags, drive the terminal, handle signals and map outcomes to exit
// codes; the VM itself is package govmm.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
)

// Exit statuses, documented in --help and the README.
const (
	exitOK         = 0 // help or version printed: no VM ran
	exitPoweredOff = 0 // the guest powered off
	exitError      = 1 // govmm could not start or run the VM
	exitUsage      = 2 // bad command line or configuration: nothing was started
	exitRebooted   = 3 // the guest rebooted or reset
	exitCrashed    = 4 // the guest panicked, triple-faulted or hit a KVM emulation failure
	exitStopped    = 5 // stopped from the host: Ctrl-A x, SIGINT or SIGTERM
)

const usage = `govmm runs a Linux kernel in a KVM microVM.

Usage:
  govmm run --kernel BZIMAGE [--initrd FILE] [--cmdline STRING] [--memory SIZE] [--cpus N]
  govmm run --bundle DIR [--memory SIZE] [--cpus N]     run an OCI bundle's process in a microVM
  govmm compare [--runtimes govmm,qemu,runc,crun] [--runs N] [--only start,memory,...] [--bundle DIR]
  govmm help [run|compare]
  govmm version

Run 'govmm run --help' for the flags of run, 'govmm compare --help' for
compare, which runs one OCI bundle in a microVM and in containers and
prints what the microVM costs.
`

func main() { os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func dispatch(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCommand(args[1:], stdin, stdout, stderr)
	case "compare":
		return execCompare(args[1:], stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "run" {
			return runCommand([]string{"--help"}, stdin, stdout, stderr)
		}
		if len(args) > 1 && args[1] == "compare" {
			return execCompare([]string{"help"}, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		info, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, "govmm", versionString(version, info))
		return exitOK
	}
	fmt.Fprintf(stderr, "govmm: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// compareBinary is govmm compare's own binary, beside govmm's: linked in,
// its chart and progress bar would cost every VM about 2 MiB of RSS.
const compareBinary = "govmm-compare"

// execCompare replaces govmm with govmm-compare, which runs this govmm
// binary itself for its microVMs. It returns only if the exec failed.
func execCompare(args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "govmm compare: %v\n", err)
		return exitError
	}
	path := filepath.Join(filepath.Dir(self), compareBinary)
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(stderr, "govmm compare: %s: %v (make build builds it beside govmm)\n", path, err)
	return exitError
}

// version, if set at build time with -ldflags "-X main.version=...",
// overrides the module version the build recorded.
var version string

// versionString is what `govmm version` prints: the version (linked, else
// the module's: a tag such as v0.3.0, or a pseudo-version, or "(devel)"
// for a build from a checkout) and the VCS revision it was built from,
// marked "modified" when the tree had uncommitted changes.
func versionString(linked string, info *debug.BuildInfo) string {
	v := linked
	if v == "" && info != nil {
		v = info.Main.Version
	}
	if v == "" {
		v = "(unknown)"
	}
	if info == nil {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	if modified == "true" {
		return fmt.Sprintf("%s (revision %s, modified)", v, rev)
	}
	return fmt.Sprintf("%s (revision %s)", v, rev)
}
