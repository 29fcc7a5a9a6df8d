package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notKernel, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"run"}, exitUsage, "--kernel is required"},
		{[]string{"run", "--kernel", notKernel, "--memory", "12X"}, exitUsage, "--memory"},
		{[]string{"run", "--kernel", notKernel, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"run", "--kernel", filepath.Join(dir, "missing")}, exitError, "no such file"},
		{[]string{"run", "--kernel", notKernel, "--cpus", "0"}, exitUsage, "--cpus 0"},
		{[]string{"run", "--kernel", notKernel, "--cpus", "100000"}, exitError, "cpus"},
		{[]string{"run", "--kernel", notKernel, "--memory", "1M"}, exitError, "at least 16 MiB"},
		{[]string{"run", "--kernel", notKernel, "--memory", "100T"}, exitError, "the host has"},
	} {
		var stdout, stderr bytes.Buffer
		status := dispatch(tc.args, os.Stdin, &stdout, &stderr)
		if status != tc.status || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("govmm %q: status %d, stderr %q; want status %d and %q", tc.args, status, stderr.String(), tc.status, tc.want)
		}
	}
}

func TestHelpDocumentsEveryFlagAndExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if status := dispatch([]string{"run", "--help"}, os.Stdin, &stdout, &stderr); status != 0 {
		t.Fatalf("--help exit status %d", status)
	}
	help := stderr.String()
	for _, want := range []string{"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--stats", "--debug", "Ctrl-A x",
		"0  the guest powered off", "3  the guest rebooted", "4  the guest crashed", "5  stopped"} {
		if !strings.Contains(help, want) {
			t.Errorf("run --help does not mention %q", want)
		}
	}
}

// help and version print to standard output and succeed without a VM:
// nothing about a guest on standard error.
func TestHelpAndVersionSucceed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "govmm runs a Linux kernel"},
		{[]string{"--help"}, "govmm runs a Linux kernel"},
		{[]string{"version"}, "govmm "},
		{[]string{"--version"}, "govmm "},
	} {
		var stdout, stderr bytes.Buffer
		status := dispatch(tc.args, os.Stdin, &stdout, &stderr)
		if status != exitOK || !strings.HasPrefix(stdout.String(), tc.want) || stderr.Len() != 0 {
			t.Errorf("govmm %q: status %d, stdout %q, stderr %q; want %d, %q first, nothing on stderr", tc.args, status, stdout.String(), stderr.String(), exitOK, tc.want)
		}
	}
}
