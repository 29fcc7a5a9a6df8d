package main

import (
	"net/netip"
	"testing"
)

func TestParseHostile(t *testing.T) {
	got, err := parseHostile("all:vda:vdb:eth1:10.90.0.1:5300")
	want := hostileCheck{cases: "all", disk: "/dev/vda", spareDisk: "vdb", spareNIC: "eth1", echo: netip.MustParseAddrPort("10.90.0.1:5300")}
	if err != nil || got != want {
		t.Errorf("parseHostile = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"all:vda:vdb:eth1:10.90.0.1", "all:VDA:vdb:eth1:10.90.0.1:5300", "all:vda:../x:eth1:10.90.0.1:5300",
		"all:vda:vdb:eth/1:10.90.0.1:5300", "all:vda:vdb:eth1:host:5300", "all:vda:vdb:eth1:10.90.0.1:0"} {
		if _, err := parseHostile(bad); err == nil {
			t.Errorf("parseHostile(%q) accepted", bad)
		}
	}
}
