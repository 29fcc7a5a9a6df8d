package memory

import (
	"errors"
	"sync"
	"testing"
)

func TestUint16AtomicRoundTrip(t *testing.T) {
	m, err := New(16 * MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.WriteUint32(0x1000, 0xa1b2c3d4); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[GuestAddress]uint16{0x1000: 0xc3d4, 0x1002: 0xa1b2} {
		if v, err := m.LoadUint16Atomic(addr); err != nil || v != want {
			t.Errorf("LoadUint16Atomic(%v) = %#x, %v; want %#x", addr, v, err, want)
		}
	}
	if err := m.StoreUint16Atomic(0x1002, 0x1234); err != nil {
		t.Fatal(err)
	}
	if err := m.StoreUint16Atomic(0x1000, 0x5678); err != nil {
		t.Fatal(err)
	}
	if v, err := m.ReadUint32(0x1000); err != nil || v != 0x12345678 {
		t.Errorf("word after two stores = %#x, %v; want 0x12345678", v, err)
	}
	last := GuestAddress(16*MiB - 2)
	if err := m.StoreUint16Atomic(last, 0xbeef); err != nil {
		t.Fatalf("store to the last two bytes: %v", err)
	}
	if v, err := m.ReadUint16(last); err != nil || v != 0xbeef {
		t.Errorf("last two bytes = %#x, %v", v, err)
	}
}

func TestUint16AtomicChecksAddress(t *testing.T) {
	m, err := New(16 * MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.LoadUint16Atomic(0x1001); !errors.Is(err, ErrMisaligned) {
		t.Errorf("odd load: %v, want ErrMisaligned", err)
	}
	if err := m.StoreUint16Atomic(0x1003, 1); !errors.Is(err, ErrMisaligned) {
		t.Errorf("odd store: %v, want ErrMisaligned", err)
	}
	for _, addr := range []GuestAddress{16 * MiB, 3 * GiB, ^GuestAddress(0) - 1} {
		var ae *AddressError
		if _, err := m.LoadUint16Atomic(addr); !errors.As(err, &ae) || ae.Addr != addr {
			t.Errorf("LoadUint16Atomic(%v): %v, want an AddressError for it", addr, err)
		}
		if err := m.StoreUint16Atomic(addr, 1); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("StoreUint16Atomic(%v): %v, want ErrOutOfRange", addr, err)
		}
	}
}

// A store to one half of a word must not undo concurrent stores to the other.
func TestUint16AtomicStoresKeepTheNeighbour(t *testing.T) {
	m, err := New(16 * MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 10000
	var wg sync.WaitGroup
	for _, addr := range []GuestAddress{0x2000, 0x2002} {
		wg.Go(func() {
			for i := range uint16(n) {
				if err := m.StoreUint16Atomic(addr, i+1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, err := m.ReadUint32(0x2000); err != nil || v != n<<16|n {
		t.Errorf("word = %#x, %v; want both halves %#x", v, err, n)
	}
}
