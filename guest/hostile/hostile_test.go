package hostile

import "testing"

func TestCasesHaveDistinctNames(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range Names() {
		if seen[n] {
			t.Errorf("case %q twice", n)
		}
		seen[n] = true
	}
	if len(seen) < 40 {
		t.Errorf("%d cases, want at least 40", len(seen))
	}
}

func TestSelected(t *testing.T) {
	for _, tc := range []struct {
		sel, name string
		want      bool
	}{
		{"all", "loop-rng", true}, {"loop-rng", "loop-rng", true}, {"loop-*", "loop-blk", true},
		{"loop-*", "bar-on-ram", false}, {"loop", "loop-rng", false},
	} {
		if got := selected(tc.sel, tc.name); got != tc.want {
			t.Errorf("selected(%q, %q) = %v", tc.sel, tc.name, got)
		}
	}
}

// The port sweeps leave alone what the guest's kernel needs, however wide
// the access that would reach it.
func TestTouchesKept(t *testing.T) {
	for _, tc := range []struct {
		port     uint16
		n        int
		readOnly bool
		want     bool
	}{
		{0x3f5, 4, true, true}, {0x3f4, 4, true, false}, {0x600, 1, false, true}, {0x5fd, 4, false, true},
		{0x5fc, 4, false, false}, {0x600, 1, true, false}, {0xcfc, 2, false, true}, {0xffff, 1, false, false},
	} {
		if got := touchesKept(tc.port, tc.n, tc.readOnly); got != tc.want {
			t.Errorf("touchesKept(%#x, %d, %v) = %v", tc.port, tc.n, tc.readOnly, got)
		}
	}
}
