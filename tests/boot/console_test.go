package boot

import (
	"strings"
	"testing"
)

// With --console virtio, hvc0 becomes the guest's console once the initramfs
// has loaded virtio_console (a module in Debian's kernel, so the kernel's
// first messages and init's first lines go to ttyS0), and what the guest
// writes to /dev/hvc0 reaches govmm's output.
func TestVirtioConsoleCarriesTheConsole(t *testing.T) {
	e := testEnv(t)
	o := run(t, e, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--console", "virtio",
		"--cmdline", "console=ttyS0 console=hvc0 reboot=k,panic_warm panic=-1 quiet govmm.check=hvc")
	if o.status != statusPoweredOff || o.guest.Report == nil {
		t.Fatalf("want a guest report over hvc0 and exit status 0, got status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
	}
	c := passed(t, o, "hvc")
	if got, _ := c.Field("console"); !strings.Contains(got, "hvc0") {
		t.Errorf("guest's active consoles %q do not include hvc0", got)
	}
	if _, ok := o.guest.Check("hvc-marker"); !ok {
		t.Errorf("the line the guest wrote to /dev/hvc0 did not reach govmm's output:\n%s", o.stdout)
	}
}

// virtio-rng feeds the guest's entropy pool: the guest's hwrng is the
// virtio device and the pool is ready at init.
func TestGuestEntropyFromVirtioRNG(t *testing.T) {
	e := testEnv(t)
	o := bootWith(t, e, nil, "govmm.check=entropy")
	c := passed(t, o, "entropy")
	wantField(t, c, "rng_current", "virtio_rng.0")
	wantField(t, c, "pool_ready", "true")
}
