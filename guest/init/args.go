package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxMiB bounds every MIB argument: 64 GiB is more than any test moves.
const maxMiB = 64 << 10

// splitArgs splits a check's argument at colons into exactly len(names)
// parts; names spell the syntax in the error.
func splitArgs(arg string, names ...string) ([]string, error) {
	parts := strings.Split(arg, ":")
	if len(parts) != len(names) {
		return nil, fmt.Errorf("argument %q: want %s", arg, strings.Join(names, ":"))
	}
	return parts, nil
}

// parseDevice accepts /dev/NAME with NAME of lower-case letters and digits.
func parseDevice(s string) (string, error) {
	name, ok := strings.CutPrefix(s, "/dev/")
	if !ok || name == "" || len(name) > 32 || strings.ContainsFunc(name, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		return "", fmt.Errorf("device %q: want /dev/NAME, NAME of lower-case letters and digits (e.g. /dev/vda)", s)
	}
	return s, nil
}

// parseUint accepts plain decimal: no sign, base prefix or underscores.
func parseUint(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a decimal number below 2^64", what, s)
	}
	return n, nil
}

// parseDevSeed parses DEV:SEED:AMOUNT, the argument of the checks that
// write SEED's pattern stream to DEV, and returns AMOUNT, named amountName,
// unparsed.
func parseDevSeed(arg, amountName string) (dev string, seed uint64, amount string, err error) {
	p, err := splitArgs(arg, "DEV", "SEED", amountName)
	if err != nil {
		return "", 0, "", err
	}
	if dev, err = parseDevice(p[0]); err != nil {
		return "", 0, "", err
	}
	if seed, err = parseUint("SEED", p[1]); err != nil {
		return "", 0, "", err
	}
	return dev, seed, p[2], nil
}

func parseMiB(s string) (uint64, error) {
	n, err := parseUint("MIB", s)
	if err == nil && (n == 0 || n > maxMiB) {
		err = fmt.Errorf("MIB %d: want 1 to %d", n, maxMiB)
	}
	return n, err
}

// parseInterface accepts a Linux interface name (IFNAMSIZ is 16 with the NUL).
func parseInterface(s string) (string, error) {
	if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) {
		return "", fmt.Errorf("interface %q: want 1 to 15 letters, digits, '_', '-' or '.' (e.g. eth0)", s)
	}
	return s, nil
}

// parseHostPort accepts an IPv4 address (no names: the guest has no
// resolver) and a port from 1 to 65535.
func parseHostPort(host, port string) (netip.AddrPort, error) {
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.Is4() {
		return netip.AddrPort{}, fmt.Errorf("host %q: want an IPv4 address such as 192.168.100.1", host)
	}
	p, err := parseUint("PORT", port)
	if err != nil || p == 0 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}
