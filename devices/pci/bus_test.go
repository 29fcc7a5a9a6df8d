package pci

import (
	"errors"
	"testing"
)

func TestBusAdd(t *testing.T) {
	tests := []struct {
		name string
		dev  uint8
		f    Function
		want error
	}{
		{"free slot", 1, NewConfigSpace(virtioNet), nil},
		{"last slot", 31, NewConfigSpace(virtioNet), nil},
		{"host bridge's slot", 0, NewConfigSpace(virtioNet), ErrSlotInUse},
		{"slot 32", 32, NewConfigSpace(virtioNet), ErrBadSlot},
		{"nil function", 2, nil, ErrBadSlot},
	}
	for _, tt := range tests {
		b := NewBus()
		if err := b.Add(tt.dev, tt.f); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("%s: Add(%d) = %v, want %v", tt.name, tt.dev, err, tt.want)
		}
	}
	b := NewBus()
	if err := b.Add(3, NewConfigSpace(virtioNet)); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(3, NewConfigSpace(virtioNet)); !errors.Is(err, ErrSlotInUse) {
		t.Errorf("second Add(3) = %v, want ErrSlotInUse", err)
	}
}

func TestBusRouting(t *testing.T) {
	b := NewBus()
	if err := b.Add(3, NewConfigSpace(virtioNet)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		a    BDF
		want uint32 // vendor and device ID
	}{
		{BDF{0, 0, 0}, 0x0d57_8086},
		{BDF{0, 3, 0}, 0x1041_1af4},
		{BDF{0, 3, 1}, 0xffff_ffff},
		{BDF{0, 4, 0}, 0xffff_ffff},
		{BDF{1, 3, 0}, 0xffff_ffff},
		{BDF{0, 200, 0}, 0xffff_ffff},
	}
	for _, tt := range tests {
		buf := []byte{0, 0, 0, 0}
		b.ReadConfig(tt.a, 0, buf)
		if got := le.Uint32(buf); got != tt.want {
			t.Errorf("%v: IDs %#x, want %#x", tt.a, got, tt.want)
		}
		b.WriteConfig(tt.a, regInterruptLine, []byte{7}) // dropped when missing
	}
}

func TestBDFString(t *testing.T) {
	if got := (BDF{0, 0x1f, 7}).String(); got != "00:1f.7" {
		t.Errorf("String() = %q, want 00:1f.7", got)
	}
}
