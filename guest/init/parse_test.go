package main

import "testing"

func TestParseCmdlineGroupsQuotedWords(t *testing.T) {
	got := parseCmdline(`console=ttyS0 quiet govmm.check=rtc,disk=/dev/vda govmm.quoted="a b" govmm.exit=shell  rw`)
	want := map[string]string{"console": "ttyS0", "quiet": "", "govmm.check": "rtc,disk=/dev/vda", "govmm.quoted": "a b", "govmm.exit": "shell", "rw": ""}
	if len(got) != len(want) {
		t.Errorf("parseCmdline = %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("parameter %s = %q, want %q", k, got[k], v)
		}
	}
	if l := splitList(got["govmm.check"]); len(l) != 2 || l[0] != "rtc" || l[1] != "disk=/dev/vda" {
		t.Errorf("splitList = %q", l)
	}
}

func TestCountCPUs(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-3": 4, "0-3,5": 5, "0,2,4-7": 6, "": 0} {
		if got := countCPUs(list); got != want {
			t.Errorf("countCPUs(%q) = %d, want %d", list, got, want)
		}
	}
}

func TestMemTotalKB(t *testing.T) {
	meminfo := "MemTotal:         222752 kB\nMemFree:          200000 kB\n"
	if got := memTotalKB(meminfo); got != 222752 {
		t.Errorf("memTotalKB = %d, want 222752", got)
	}
	if got := memTotalKB("garbage"); got != 0 {
		t.Errorf("memTotalKB(garbage) = %d, want 0", got)
	}
}

func TestRootMountIsTheLastMountOnSlash(t *testing.T) {
	mounts := "none / rootfs rw 0 0\nproc /proc proc rw 0 0\n/dev/vda / ext4 ro,relatime 0 0\n/dev/vdb /mnt ext4 rw 0 0\n"
	if dev, fs := rootMount(mounts); dev != "/dev/vda" || fs != "ext4" {
		t.Errorf("rootMount = %q, %q; want /dev/vda, ext4", dev, fs)
	}
}

func TestKmsgLine(t *testing.T) {
	for record, want := range map[string]string{
		"6,339,5140900,-;NET: Registered protocol family 10\n":                         "kmsg: [5.140900] NET: Registered protocol family 10",
		"7,160,424069,-;pci_root 0000:00: bus 0\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP\n": "kmsg: [0.424069] pci_root 0000:00: bus 0",
	} {
		if got, ok := kmsgLine(record); !ok || got != want {
			t.Errorf("kmsgLine(%q) = %q, %v; want %q", record, got, ok, want)
		}
	}
	for _, bad := range []string{"", "no separator", "6,339;text", "6,339,x,-;text"} {
		if got, ok := kmsgLine(bad); ok {
			t.Errorf("kmsgLine(%q) = %q, want refused", bad, got)
		}
	}
}
