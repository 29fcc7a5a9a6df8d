package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/govmm/govmm"
	"github.com/govmm/govmm/devices"
)

// statsFile is what --stats writes: KVM's statistics summed over vCPUs under
// their KVM names, and the exits govmm served itself.
type statsFile struct {
	Reason        string                    `json:"reason"`
	Detail        string                    `json:"detail"`
	KVM           map[string]uint64         `json:"kvm"`
	UserExits     map[string]uint64         `json:"user_exits"`
	UnhandledPIO  []devices.UnhandledAccess `json:"unhandled_pio,omitempty"`
	UnhandledMMIO []devices.UnhandledAccess `json:"unhandled_mmio,omitempty"`
}

func writeStats(path string, res govmm.Result) error {
	data, err := json.MarshalIndent(statsFile{
		Reason:        res.Reason.String(),
		Detail:        res.Detail,
		KVM:           res.KVMStats,
		UserExits:     map[string]uint64{"pio": res.UserExits.PIO, "mmio": res.UserExits.MMIO},
		UnhandledPIO:  res.UnhandledPIO,
		UnhandledMMIO: res.UnhandledMMIO,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --stats file: %w", err)
	}
	return nil
}

func printUnhandled(w io.Writer, res govmm.Result) {
	fmt.Fprintf(w, "govmm: exits served by govmm: %d port I/O, %d MMIO\n", res.UserExits.PIO, res.UserExits.MMIO)
	for _, bus := range []struct {
		name string
		list []devices.UnhandledAccess
	}{{"port", res.UnhandledPIO}, {"MMIO address", res.UnhandledMMIO}} {
		for _, u := range bus.list {
			dir := "read"
			if u.Write {
				dir = "write"
			}
			fmt.Fprintf(w, "govmm: unhandled %s %#x %s: %d times\n", bus.name, u.Addr, dir, u.Count)
		}
	}
}
