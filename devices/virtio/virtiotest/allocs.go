package virtiotest

import "testing"

// NoAllocs runs f, one request or frame through a device's hot path, 100
// times after a warm-up run and fails t if it allocated on the heap: in
// steady state a request must cost the garbage collector nothing. f checks
// its own results. The race detector does not change the count (Go 1.26),
// so the check holds under -race too.
func NoAllocs(t testing.TB, what string, f func()) {
	t.Helper()
	if avg := testing.AllocsPerRun(100, f); avg != 0 {
		t.Errorf("%s: %v heap allocations per run in steady state; want 0", what, avg)
	}
}
