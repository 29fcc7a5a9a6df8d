package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/govmm/govmm"
)

// keyValues splits "k=v,flag,k2=v2" into ordered pairs; a bare word has an
// empty value and hasValue false.
type keyValue struct {
	key, value string
	hasValue   bool
}

func splitOptions(s string) []keyValue {
	var out []keyValue
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		out = append(out, keyValue{k, v, ok})
	}
	return out
}

// parseDisk reads --disk path=FILE[,ro][,serial=ID][,aio=auto|io_uring|blocking].
func parseDisk(s string) (govmm.Disk, error) {
	var d govmm.Disk
	for _, kv := range splitOptions(s) {
		switch {
		case kv.key == "path" && kv.hasValue:
			d.Path = kv.value
		case kv.key == "ro" && !kv.hasValue:
			d.ReadOnly = true
		case kv.key == "serial" && kv.hasValue:
			d.Serial = kv.value
		case kv.key == "aio" && kv.hasValue:
			m, ok := aioModes[kv.value]
			if !ok {
				return d, fmt.Errorf("--disk %q: unknown aio=%s: use aio=auto (the default), aio=io_uring or aio=blocking", s, kv.value)
			}
			d.IO = m
		default:
			return d, fmt.Errorf("--disk %q: unknown option %q: use path=FILE[,ro][,serial=ID][,aio=auto|io_uring|blocking]", s, kv.key)
		}
	}
	if d.Path == "" {
		return d, fmt.Errorf("--disk %q: no path=FILE: use e.g. --disk path=rootfs.img", s)
	}
	return d, nil
}

// aioModes are the values of --disk's aio option.
var aioModes = map[string]govmm.IOMode{"auto": govmm.IOAuto, "io_uring": govmm.IOUring, "blocking": govmm.IOBlocking}

// parseNIC reads --net tap=NAME[,mac=MAC][,ip=ADDR/PREFIX]; the address
// is the zero Prefix when ip= is not given.
func parseNIC(s string) (govmm.NIC, netip.Prefix, error) {
	var n govmm.NIC
	var addr netip.Prefix
	for _, kv := range splitOptions(s) {
		switch {
		case kv.key == "tap" && kv.hasValue:
			n.Tap = kv.value
		case kv.key == "mac" && kv.hasValue:
			mac, err := net.ParseMAC(kv.value)
			if err != nil || len(mac) != 6 {
				return n, addr, fmt.Errorf("--net %q: bad MAC %q: use six hex bytes, e.g. mac=52:54:00:12:34:56", s, kv.value)
			}
			n.MAC = mac
		case kv.key == "ip" && kv.hasValue:
			p, err := netip.ParsePrefix(kv.value)
			if err != nil || !p.Addr().Is4() || p.Bits() == 0 {
				return n, addr, fmt.Errorf("--net %q: bad ip=%s: give the guest's IPv4 address and prefix length, e.g. ip=192.168.100.2/24", s, kv.value)
			}
			addr = p
		default:
			return n, addr, fmt.Errorf("--net %q: unknown option %q: use tap=NAME[,mac=MAC][,ip=ADDR/PREFIX]", s, kv.key)
		}
	}
	if n.Tap == "" {
		return n, addr, fmt.Errorf("--net %q: no tap=NAME: use e.g. --net tap=tap0", s)
	}
	return n, addr, nil
}

// randomMAC is a random unicast, locally administered MAC (IEEE 802
// §8.2): the guest's when the host must know it to name the NIC.
func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m) // never fails (crypto/rand, Go ≥ 1.24)
	m[0] = m[0]&^1 | 2
	return m
}

// parseBoot reads --boot auto|bzimage|pvh.
func parseBoot(s string) (govmm.BootPath, error) {
	switch s {
	case "auto":
		return govmm.BootAuto, nil
	case "bzimage":
		return govmm.BootBzImage, nil
	case "pvh":
		return govmm.BootPVH, nil
	}
	return 0, fmt.Errorf("--boot %q: use auto, bzimage or pvh", s)
}

// parseConsole reads --console serial|virtio.
func parseConsole(s string) (govmm.ConsoleKind, error) {
	switch s {
	case "serial":
		return govmm.SerialConsole, nil
	case "virtio":
		return govmm.VirtioConsole, nil
	}
	return 0, fmt.Errorf("--console %q: use serial (COM1, the guest's ttyS0) or virtio (virtio-console, the guest's hvc0)", s)
}
