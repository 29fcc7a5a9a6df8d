package main

import "testing"

func TestParseCmdlineGroupsQuotedWords(t *testing.T) {
	got := parseCmdline(`console=ttyS0 quiet govmm.check=rtc,modules govmm.quoted="a b" govmm.exit=shell`)
	want := map[string]string{"console": "ttyS0", "govmm.check": "rtc,modules", "govmm.quoted": "a b", "govmm.exit": "shell"}
	if len(got) != len(want) {
		t.Errorf("parseCmdline = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, got[k], v)
		}
	}
	if l := splitList(got["govmm.check"]); len(l) != 2 || l[0] != "rtc" || l[1] != "modules" {
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
