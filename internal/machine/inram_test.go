package machine

import (
	"testing"

	"github.com/govmm/govmm/memory"
)

// InRAM follows the RAM layout on both sides of the PCI hole.
func TestInRAM(t *testing.T) {
	v := &Machine{ramMap: []memory.Mapping{{Guest: 0, Size: 3 << 30}, {Guest: 4 << 30, Size: 1 << 30}}}
	for _, c := range []struct {
		addr, n uint64
		want    bool
	}{
		{0, 4096, true},
		{3<<30 - 4096, 4096, true},
		{3<<30 - 4096, 8192, false}, // runs into the hole
		{3 << 30, 4096, false},
		{4 << 30, 4096, true},
		{5<<30 - 4096, 4096, true},
		{5 << 30, 4096, false},
		{^uint64(0) - 10, 4096, false}, // wraps
	} {
		if got := v.InRAM(c.addr, c.n); got != c.want {
			t.Errorf("InRAM(%#x, %#x) = %v, want %v", c.addr, c.n, got, c.want)
		}
	}
}
