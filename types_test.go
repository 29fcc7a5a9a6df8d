package govmm

import (
	"strings"
	"testing"

	"github.com/govmm/govmm/internal/machine"
)

// What SIGQUIT prints for a vCPU: its state, where it is, and the vectors
// its local APIC holds.
func TestVCPUStateString(t *testing.T) {
	s := VCPUState{ID: 1, MPState: "halted", Requested: []int{0x26, 0x27, 0xff}, InService: []int{2}}
	s.Regs.RIP, s.CR3 = 0xffffffff81a17a0b, 0x54fa000
	got := s.String()
	for _, want := range []string{"vCPU 1: halted", "rip=0xffffffff81a17a0b", "cr3=0x54fa000", "irr=[0x26 0x27 0xff]", "isr=[0x2]"} {
		if !strings.Contains(got, want) {
			t.Errorf("state %q lacks %q", got, want)
		}
	}
}

// Each of the API's I/O modes is one of the disk device's, under the same
// name: a mode added to one and not the other fails here.
func TestIOModesMatchTheDisk(t *testing.T) {
	for m, want := range map[IOMode]string{IOAuto: "auto", IOUring: "io_uring", IOBlocking: "blocking", IOInline: "inline", 9: "IOMode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("IOMode %d is %q, want %q", int(m), got, want)
		}
	}
}

// The API's boot paths are the machine's, value for value.
func TestBootPathsMatchTheMachine(t *testing.T) {
	for api, m := range map[BootPath]machine.BootPath{BootAuto: machine.BootAuto, BootBzImage: machine.BootBzImage, BootPVH: machine.BootPVH} {
		if got := (Config{Boot: api}).machine().Boot; got != m {
			t.Errorf("BootPath %d reaches the machine as %d, want %d", api, got, m)
		}
	}
	if err := (Config{Boot: BootPVH + 1}).Validate(); err == nil || !strings.Contains(err.Error(), "unknown boot path") {
		t.Errorf("an unknown boot path: %v", err)
	}
}
