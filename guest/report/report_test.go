package report

import (
	"strings"
	"testing"
)

func TestRoundTripThroughNoisyConsole(t *testing.T) {
	r := Report{CPUs: 4, MemTotalKB: 4030000, Cmdline: `console=ttyS0 govmm.x="a b"`, UptimeS: 1.25, PayloadSHA256: "ab12"}
	checks := []Check{{"rtc", true, "2026-11-25  10:00"}, {"modules", false, "virtio_blk: no such file"}}
	out := "[    0.1] booting\r\n" + "[    1.0] random: crng init done" + r.Line() + "\r\n"
	for _, c := range checks {
		out += c.Line() + "\r\n"
	}
	out += DonePrefix + "poweroff\r\n[    2.0] reboot: Power down\r\n"
	got := Scan(strings.NewReader(out))
	if got.Report == nil || *got.Report != r {
		t.Fatalf("report %+v, want %+v", got.Report, r)
	}
	if len(got.Checks) != 2 || got.Checks[0] != (Check{"rtc", true, "2026-11-25 10:00"}) || got.Checks[1].OK {
		t.Errorf("checks %+v", got.Checks)
	}
	if c, ok := got.Check("modules"); !ok || c.Detail != "virtio_blk: no such file" {
		t.Errorf("Check(modules) = %+v, %v", c, ok)
	}
	if got.Done != "poweroff" {
		t.Errorf("done %q", got.Done)
	}
}

func TestRejectsMalformedLines(t *testing.T) {
	for _, line := range []string{ReportPrefix + "{", ReportPrefix + `{"cpus":"x"}`, "GOVMM-REPORTX {}"} {
		if r, ok := Parse(line); ok {
			t.Errorf("Parse(%q) = %+v", line, r)
		}
	}
	for _, line := range []string{CheckPrefix, CheckPrefix + "x", CheckPrefix + "x MAYBE", CheckPrefix + " PASS"} {
		if c, ok := ParseCheck(line); ok {
			t.Errorf("ParseCheck(%q) = %+v", line, c)
		}
	}
	if c := Scan(strings.NewReader("nothing here\n")); c.Report != nil || len(c.Checks) != 0 || c.Done != "" {
		t.Errorf("Scan of noise = %+v", c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Report{CPUs: 1}.Line())
	f.Add(Check{"a", true, "b"}.Line())
	f.Add("GOVMM-CHECK  PASS")
	f.Fuzz(func(t *testing.T, line string) {
		if r, ok := Parse(line); ok {
			if _, ok := Parse(r.Line()); !ok {
				t.Fatalf("report %+v does not round-trip", r)
			}
		}
		if c, ok := ParseCheck(line); ok && c.Name == "" {
			t.Fatalf("check with no name from %q", line)
		}
		Scan(strings.NewReader(line))
	})
}
