package boot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
)

// The guest finds configuration mechanism #1 and, through the DSDT's PCI
// root bridge, enumerates govmm's host bridge. Its writes to the
// configuration address port (and the CMOS index) reach govmm through
// KVM's coalesced ring where KVM has one, and enumeration still finds the
// bridge.
func TestGuestEnumeratesPCIHostBridge(t *testing.T) {
	e := testEnv(t)
	stats := filepath.Join(t.TempDir(), "stats.json")
	o := bootWith(t, e, []string{"--stats", stats}, "govmm.check=pci")
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
	user := readUserExits(t, stats)
	if !hostCoalescesPIO(t) {
		t.Logf("this host's KVM cannot coalesce port writes; user exits %v", user)
		return
	}
	// Linux writes 0xCF8 before each of its hundreds of configuration
	// accesses while it enumerates: fewer than 100 means they come to govmm
	// as exits.
	if got := user["coalesced_writes"]; got < 100 {
		t.Errorf("--stats user_exits.coalesced_writes = %d, want the guest's 0xCF8 and 0x70 writes (hundreds): %v", got, user)
	}
}

func readUserExits(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--stats file: %v", err)
	}
	var f struct {
		User map[string]uint64 `json:"user_exits"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("--stats file: %v\n%s", err, data)
	}
	return f.User
}

// hostCoalescesPIO says whether this host's KVM has KVM_CAP_COALESCED_PIO.
func hostCoalescesPIO(t *testing.T) bool {
	t.Helper()
	sys, err := kvm.Open("/dev/kvm")
	if err != nil {
		t.Fatalf("open /dev/kvm: %v", err)
	}
	defer sys.Close()
	n, err := sys.CheckExtension(kvm.CapCoalescedPIO)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}
