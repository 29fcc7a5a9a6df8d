package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vmlinuxCache points govmm's cache (GOVMM_CACHE) at a directory of the
// test's and returns where the extracted vmlinux files go in it.
func vmlinuxCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("GOVMM_CACHE", dir)
	return filepath.Join(dir, "vmlinux")
}

// cachedVmlinux is the one vmlinux in the cache, or fails.
func cachedVmlinux(t *testing.T, cache string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(cache, "vmlinux-*"))
	if len(paths) != 1 || strings.HasSuffix(paths[0], ".tmp") {
		t.Fatalf("vmlinux cache %s holds %v; want one extracted vmlinux", cache, paths)
	}
	return paths[0]
}

// The Debian cloud kernel booted through PVH, its vmlinux extracted by
// govmm on the host, reaches init like the classic path: the guest sees
// the vCPUs, the memory and the command line it was given, on one vCPU
// and 256 MiB as on four and 4 GiB (RAM on both sides of the PCI hole).
func TestPVHBootsTheExtractedKernel(t *testing.T) {
	e := testEnv(t)
	cache := vmlinuxCache(t)
	for _, tc := range []struct {
		cpus        int
		mem         string
		size, slack uint64
	}{
		{1, "256M", 256 << 20, 64 << 20},
		{4, "4G", 4 << 30, 200 << 20},
	} {
		t.Run(fmt.Sprintf("%d vCPUs %s", tc.cpus, tc.mem), func(t *testing.T) {
			want := cmdline(fmt.Sprintf("govmm.token=%x", time.Now().UnixNano()))
			o := run(t, e, "--boot", "pvh", "--kernel", e.kernel, "--initrd", e.initrd,
				"--cpus", fmt.Sprint(tc.cpus), "--memory", tc.mem, "--cmdline", want)
			if o.status != statusPoweredOff || o.guest.Report == nil {
				t.Fatalf("want a guest report and exit status 0, got status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
			}
			r := o.guest.Report
			if r.CPUs != tc.cpus {
				t.Errorf("guest sees %d CPUs, want %d (ACPI's MADT through PVH's RSDP)", r.CPUs, tc.cpus)
			}
			if got := r.MemTotalKB << 10; got > tc.size || got < tc.size-tc.slack {
				t.Errorf("guest MemTotal %d MiB, want %d MiB less at most %d (the start info's memory map)", got>>20, tc.size>>20, tc.slack>>20)
			}
			if r.Cmdline != want {
				t.Errorf("guest /proc/cmdline = %q, want %q", r.Cmdline, want)
			}
			if r.PayloadSHA256 != e.payloadSHA256 {
				t.Errorf("the initrd (PVH's module) reached the guest damaged: payload sha256 %q, want %q", r.PayloadSHA256, e.payloadSHA256)
			}
			cachedVmlinux(t, cache)
		})
	}
}

// The extracted vmlinux is kept: the next boot uses it as it is, and an
// entry that was damaged (cut short) is extracted again.
func TestPVHKeepsAndRepairsItsCache(t *testing.T) {
	e := testEnv(t)
	cache := vmlinuxCache(t)
	boot := func() {
		t.Helper()
		o := run(t, e, "--boot", "pvh", "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--cmdline", cmdline())
		if o.status != statusPoweredOff || o.guest.Report == nil {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
		}
	}
	boot()
	path := cachedVmlinux(t, cache)
	first, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	boot()
	if again, err := os.Stat(path); err != nil || !again.ModTime().Equal(first.ModTime()) {
		t.Errorf("the second boot replaced the cached vmlinux (%v)", err)
	}
	if err := os.Truncate(path, first.Size()/2); err != nil {
		t.Fatal(err)
	}
	boot()
	if st, err := os.Stat(cachedVmlinux(t, cache)); err != nil || st.Size() != first.Size() {
		t.Errorf("the damaged cache entry was not rebuilt: %v, %v", st, err)
	}
}

// An ELF vmlinux given as --kernel boots through PVH by default; --boot
// bzimage refuses it with a message saying why, and PVH's guest endings
// keep their exit statuses.
func TestPVHBootsAnELFVmlinux(t *testing.T) {
	e := testEnv(t)
	cache := vmlinuxCache(t)
	o := run(t, e, "--boot", "pvh", "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--cmdline", cmdline())
	if o.status != statusPoweredOff {
		t.Fatalf("extracting the vmlinux: status %d\nstderr:\n%s", o.status, o.stderr)
	}
	vmlinux := cachedVmlinux(t, cache)
	for _, tc := range []struct {
		action string
		status int
	}{
		{"poweroff", statusPoweredOff},
		{"reboot", statusRebooted},
		{"panic", statusCrashed},
	} {
		t.Run(tc.action, func(t *testing.T) {
			o := run(t, e, "--kernel", vmlinux, "--initrd", e.initrd, "--memory", "256M", "--cmdline", cmdline("govmm.exit="+tc.action))
			if o.guest.Report == nil || o.guest.Done != tc.action || o.status != tc.status {
				t.Errorf("ELF vmlinux, govmm.exit=%s: report %v, done %q, status %d; want status %d\nstdout:\n%s\nstderr:\n%s",
					tc.action, o.guest.Report != nil, o.guest.Done, o.status, tc.status, o.stdout, o.stderr)
			}
		})
	}
	o = run(t, e, "--boot", "bzimage", "--kernel", vmlinux, "--initrd", e.initrd)
	if o.status != statusError || !strings.Contains(o.stderr, "ELF vmlinux") || !strings.Contains(o.stderr, "--boot pvh") {
		t.Errorf("--boot bzimage with an ELF vmlinux: status %d, stderr %q; want %d and a message naming the way out", o.status, o.stderr, statusError)
	}
}
