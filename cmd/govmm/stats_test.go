package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/govmm/govmm"
)

// On a host kernel without KVM statistics a clean poweroff still exits 0,
// and --stats says why it has no KVM numbers instead of failing.
func TestStatsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats.json")
	why := "KVM_GET_STATS_FD of vCPU 0: KVM has no binary statistics (KVM_GET_STATS_FD needs Linux 5.14+): inappropriate ioctl for device"
	res := govmm.Result{Reason: govmm.PoweredOff, Detail: "guest powered off", KVMStatsUnavailable: why, UserExits: govmm.UserExits{PIO: 3}}
	if status := report(res, nil, &runFlags{statsPath: path}, io.Discard); status != exitPoweredOff {
		t.Errorf("exit status %d, want %d", status, exitPoweredOff)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got["kvm_stats_unavailable"] != why || got["reason"] != "powered off" || got["user_exits"].(map[string]any)["pio"] != 3.0 {
		t.Errorf("--stats wrote %s; want the reason the statistics are missing, and the rest", data)
	}

	// With statistics there is no such key.
	res = govmm.Result{Reason: govmm.PoweredOff, KVMStats: map[string]uint64{"exits": 9}}
	if status := report(res, nil, &runFlags{statsPath: path}, io.Discard); status != exitPoweredOff {
		t.Errorf("exit status %d, want %d", status, exitPoweredOff)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["kvm_stats_unavailable"]; ok || got["kvm"].(map[string]any)["exits"] != 9.0 {
		t.Errorf("--stats wrote %s; want the statistics and no kvm_stats_unavailable", data)
	}
}
