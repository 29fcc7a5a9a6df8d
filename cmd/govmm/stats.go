package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/govmm/govmm"
)

// statsFile is what --stats writes: KVM's statistics summed over vCPUs under
// their KVM names, or why there are none (a host kernel before Linux 5.14
// has no KVM_GET_STATS_FD), and the exits govmm served itself.
type statsFile struct {
	Reason         string                      `json:"reason"`
	Detail         string                      `json:"detail"`
	KVM            map[string]uint64           `json:"kvm"`
	KVMUnavailable string                      `json:"kvm_stats_unavailable,omitempty"`
	UserExits      map[string]uint64           `json:"user_exits"`
	Queues         map[string]govmm.QueueStats `json:"virtqueues,omitempty"`
	ConsoleDropped uint64                      `json:"console_dropped,omitempty"`
	UnhandledPIO   []govmm.UnhandledAccess     `json:"unhandled_pio,omitempty"`
	UnhandledMMIO  []govmm.UnhandledAccess     `json:"unhandled_mmio,omitempty"`
	BundleStart    *bundleStart                `json:"bundle_start,omitempty"`
}

func writeStats(path string, res govmm.Result) error {
	return writeStatsFile(path, resultStats(res))
}

// resultStats is --stats's file for a VM that has ended.
func resultStats(res govmm.Result) statsFile {
	return statsFile{
		Reason:         res.Reason.String(),
		Detail:         res.Detail,
		KVM:            res.KVMStats,
		KVMUnavailable: res.KVMStatsUnavailable,
		UserExits:      userExits(res.UserExits),
		UnhandledPIO:   res.UnhandledPIO,
		UnhandledMMIO:  res.UnhandledMMIO,
		Queues:         res.VirtQueues,
		ConsoleDropped: res.ConsoleDropped,
	}
}

// writeRunningStats is SIGUSR1's snapshot of a running VM.
func writeRunningStats(path string, vm *govmm.VM) error {
	s, err := runningStats(vm)
	if err != nil {
		return err
	}
	return writeStatsFile(path, s)
}

func runningStats(vm *govmm.VM) (statsFile, error) {
	kvmStats, user, err := vm.Stats()
	s := statsFile{Reason: "running", KVM: kvmStats, UserExits: userExits(user), Queues: vm.QueueStats()}
	if errors.Is(err, govmm.ErrStatsUnavailable) {
		s.KVMUnavailable = err.Error()
	} else if err != nil {
		return s, err
	}
	return s, nil
}

// statsOnSIGUSR1 writes a running VM's stats each time govmm gets SIGUSR1,
// until the returned stop is called.
func statsOnSIGUSR1(stderr io.Writer, write func() error) (stop func()) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			if err := write(); err != nil {
				fmt.Fprintf(stderr, "govmm: SIGUSR1: %v\n", err)
			}
		}
	}()
	return func() { signal.Stop(usr1) }
}

func userExits(u govmm.UserExits) map[string]uint64 {
	return map[string]uint64{"pio": u.PIO, "mmio": u.MMIO, "coalesced_writes": u.Coalesced}
}

// writeStatsFile replaces path atomically, so a reader polling it never sees
// half a file.
func writeStatsFile(path string, s statsFile) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --stats file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write --stats file: %w", err)
	}
	return nil
}

func printUnhandled(w io.Writer, res govmm.Result) {
	fmt.Fprintf(w, "govmm: exits served by govmm: %d port I/O, %d MMIO; %d index-register writes that KVM kept for govmm\n",
		res.UserExits.PIO, res.UserExits.MMIO, res.UserExits.Coalesced)
	for _, bus := range []struct {
		name string
		list []govmm.UnhandledAccess
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
