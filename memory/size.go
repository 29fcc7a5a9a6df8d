package memory

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// ParseSize reads a size such as "512M", "4G", "65536K" or "1073741824" (bytes).
// Suffixes are binary (K = 1024) and may be followed by "iB" or "B".
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		case 't', 'T':
			shift = 40
		}
		if shift != 0 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("size %q: want a whole number with an optional K, M, G or T suffix, like 512M", s)
	}
	if v != 0 && bits.LeadingZeros64(v) < shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v << shift, nil
}
