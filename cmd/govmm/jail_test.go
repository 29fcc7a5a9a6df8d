package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWithoutFlagsDropsTheJailsOwn(t *testing.T) {
	in := []string{"--jail", "/srv/vm", "--kernel", "/vmlinuz", "--uid=1000", "--gid", "1000", "--cmdline", "--jail x"}
	got := withoutFlags(in, jailFlags)
	want := []string{"--kernel", "/vmlinuz", "--cmdline", "--jail x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withoutFlags(%q) = %q, want %q", in, got, want)
	}
}

// Every mistake in a jail's flags is a usage error, said before anything
// is made, naming the fix.
func TestJailRefusesWhatCannotWork(t *testing.T) {
	jail := t.TempDir()
	if err := os.WriteFile(filepath.Join(jail, "vmlinuz"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kernel", "/vmlinuz", "--uid", "5", "--gid", "5"}, "give --jail too"},
		{[]string{"--jail", "rel", "--kernel", "/vmlinuz", "--uid", "5", "--gid", "5"}, "absolute path"},
		{[]string{"--jail", filepath.Join(jail, "none"), "--kernel", "/vmlinuz", "--uid", "5", "--gid", "5"}, "not a directory"},
		{[]string{"--jail", jail, "--kernel", "/vmlinuz"}, "needs --uid and --gid"},
		{[]string{"--jail", jail, "--kernel", "/vmlinuz", "--uid", "0", "--gid", "5"}, "must not be 0"},
		{[]string{"--jail", jail, "--kernel", "vmlinuz", "--uid", "5", "--gid", "5"}, "inside the jail from its root"},
		{[]string{"--jail", jail, "--kernel", "/vmlinuz", "--initrd", "/initrd", "--uid", "5", "--gid", "5"}, "/initrd is not in the jail"},
	} {
		var stderr bytes.Buffer
		status := runCommand(tc.args, os.Stdin, &bytes.Buffer{}, &stderr)
		if os.Geteuid() != 0 && strings.Contains(stderr.String(), "needs root") {
			continue
		}
		if status != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("govmm run %q: status %d, stderr %q; want %d and %q", tc.args, status, stderr.String(), exitUsage, tc.want)
		}
	}
}
