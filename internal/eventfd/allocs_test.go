package eventfd

import "testing"

// A kick or an interrupt allocates nothing: a device's queue reads its kick
// eventfd for every request it waits for, and an irqfd is written for every
// interrupt.
func TestReadAndWriteAllocateNothing(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if avg := testing.AllocsPerRun(100, func() {
		if err := e.Write(3); err != nil {
			t.Fatal(err)
		}
		if n, err := e.Read(); n != 3 || err != nil {
			t.Fatalf("Read() = %d, %v; want 3", n, err)
		}
	}); avg != 0 {
		t.Errorf("Write and Read: %v heap allocations per run; want 0", avg)
	}
}
