package main

import (
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/govmm/govmm"
)

func TestParseDisk(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want govmm.Disk
	}{
		{"path=a.img", govmm.Disk{Path: "a.img"}},
		{"path=a.img,ro", govmm.Disk{Path: "a.img", ReadOnly: true}},
		{"serial=disk-1,path=/x/y.img,ro", govmm.Disk{Path: "/x/y.img", ReadOnly: true, Serial: "disk-1"}},
		{"path=a.img,aio=blocking", govmm.Disk{Path: "a.img", IO: govmm.IOBlocking}},
		{"path=a.img,aio=io_uring", govmm.Disk{Path: "a.img", IO: govmm.IOUring}},
		{"path=a.img,aio=auto", govmm.Disk{Path: "a.img"}},
	} {
		got, err := parseDisk(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseDisk(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for in, wantMsg := range map[string]string{
		"a.img":                 `unknown option "a.img"`,
		"path=a.img,rw":         `unknown option "rw"`,
		"ro":                    "no path=FILE",
		"path=a.img,ro=yes":     `unknown option "ro"`,
		"path=a.img,aio=native": "unknown aio=native",
	} {
		if _, err := parseDisk(in); err == nil || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("parseDisk(%q) error = %v; want it to mention %s", in, err, wantMsg)
		}
	}
}

func TestParseNIC(t *testing.T) {
	got, addr, err := parseNIC("tap=tap0,mac=52:54:00:12:34:56")
	want := govmm.NIC{Tap: "tap0", MAC: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}}
	if err != nil || !reflect.DeepEqual(got, want) || addr.IsValid() {
		t.Fatalf("parseNIC = %+v, %v, %v; want %+v and no address", got, addr, err, want)
	}
	if _, addr, err := parseNIC("tap=tap0,ip=10.0.0.2/24"); err != nil || addr.String() != "10.0.0.2/24" {
		t.Fatalf("parseNIC(ip=10.0.0.2/24) address = %v, %v", addr, err)
	}
	for in, wantMsg := range map[string]string{
		"tap0":                              `unknown option "tap0"`,
		"mac=52:54:00:12:34:56":             "no tap=NAME",
		"tap=t,mac=zz":                      "bad MAC",
		"tap=t,mac=01:02:03:04:05:06:07:08": "bad MAC",
		"tap=t,ip=10.0.0.2":                 "bad ip=10.0.0.2",
		"tap=t,ip=fd00::2/64":               "IPv4",
		"tap=t,ip=10.0.0.2/0":               "bad ip",
	} {
		if _, _, err := parseNIC(in); err == nil || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("parseNIC(%q) error = %v; want it to mention %s", in, err, wantMsg)
		}
	}
}

func TestParseConsole(t *testing.T) {
	if k, err := parseConsole("virtio"); err != nil || k != govmm.VirtioConsole {
		t.Errorf("parseConsole(virtio) = %v, %v", k, err)
	}
	if k, err := parseConsole("serial"); err != nil || k != govmm.SerialConsole {
		t.Errorf("parseConsole(serial) = %v, %v", k, err)
	}
	if _, err := parseConsole("hvc0"); err == nil || !strings.Contains(err.Error(), "use serial") {
		t.Errorf("parseConsole(hvc0) error = %v", err)
	}
}
