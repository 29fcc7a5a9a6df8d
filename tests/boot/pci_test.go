package boot

import (
	"strings"
	"testing"
)

// The guest finds configuration mechanism #1 and, through the DSDT's PCI
// root bridge, enumerates govmm's host bridge.
func TestGuestEnumeratesPCIHostBridge(t *testing.T) {
	e := testEnv(t)
	o := bootGuest(t, e, 1, "256M", "govmm.check=pci")
	if strings.Contains(o.stdout, "No config space access function") {
		t.Errorf("the guest kernel found no PCI configuration access:\n%s", o.stdout)
	}
	c, ok := o.guest.Check("pci")
	if !ok || !c.OK {
		t.Fatalf("guest check pci: %+v (ran: %v)\nstdout:\n%s", c, ok, o.stdout)
	}
	t.Logf("guest PCI functions: %s", c.Detail)
	const want = "0x8086,0x0d57,0x060000" // vendor, device, class of the host bridge
	if got, _ := c.Field("0000_00_00_0"); got != want {
		t.Errorf("guest sees 0000:00:00.0 as %q, want %q (vendor, device, class)", got, want)
	}
}
