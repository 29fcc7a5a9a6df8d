package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// netCheck (net=IFACE:ADDR/PREFIX) gives an interface an IPv4 address and
// brings it up with the classic SIOCSIF* ioctls (what ifconfig does), then
// waits for the link to be up: the kernel adds the subnet route at that
// point. It reports the MAC, MTU and link state from sysfs.
type netCheck struct {
	iface string
	addr  netip.Prefix // the guest's address, not masked
}

func parseNet(arg string) (netCheck, error) {
	p, err := splitArgs(arg, "IFACE", "ADDR/PREFIX")
	if err != nil {
		return netCheck{}, err
	}
	var c netCheck
	if c.iface, err = parseInterface(p[0]); err != nil {
		return c, err
	}
	c.addr, err = netip.ParsePrefix(p[1])
	if err != nil || !c.addr.Addr().Is4() || c.addr.Bits() == 0 {
		return c, fmt.Errorf("address %q: want IPv4 ADDR/PREFIX with PREFIX 1 to 32 (e.g. 192.168.100.2/24)", p[1])
	}
	return c, nil
}

func (c netCheck) run() result {
	sys := "/sys/class/net/" + c.iface + "/"
	if err := waitFor(sys, deviceWait); err != nil {
		return failed(err)
	}
	if err := c.configure(); err != nil {
		return failed(err, kv("mac", readTrimmed(sys+"address")))
	}
	operstate := waitOperstateUp(sys+"operstate", deviceWait)
	return result{ok: operstate == "up", fields: []report.Field{
		kv("mac", readTrimmed(sys+"address")), kv("addr", c.addr), kv("operstate", operstate),
		kv("carrier", readTrimmed(sys+"carrier")), kv("mtu", readTrimmed(sys+"mtu")),
	}}
}

func (c netCheck) configure() error { return setIPv4(c.iface, c.addr) }

// setIPv4 gives iface the address addr (its subnet from the prefix) and
// brings it up.
func setIPv4(iface string, addr netip.Prefix) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	a := addr.Addr().As4()
	var mask [4]byte
	binary.BigEndian.PutUint32(mask[:], ^uint32(0)<<(32-addr.Bits()))
	for _, set := range []struct {
		req   uint
		bytes []byte
	}{{unix.SIOCSIFADDR, a[:]}, {unix.SIOCSIFNETMASK, mask[:]}} {
		ifr, err := unix.NewIfreq(iface)
		if err == nil {
			err = ifr.SetInet4Addr(set.bytes)
		}
		if err == nil {
			err = unix.IoctlIfreq(fd, set.req, ifr)
		}
		if err != nil {
			return fmt.Errorf("set %s address %v (ioctl %#x): %w", iface, addr, set.req, err)
		}
	}
	return linkUp(fd, iface)
}

// linkUp sets IFF_UP on iface through fd, any socket.
func linkUp(fd int, iface string) error {
	ifr, err := unix.NewIfreq(iface)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	}
	if err == nil {
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}
	if err != nil {
		return fmt.Errorf("bring %s up: %w", iface, err)
	}
	return nil
}

// waitOperstateUp polls the interface's RFC 2863 state: the kernel's link
// watcher moves it to "up" up to a second after the carrier comes.
func waitOperstateUp(path string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		state := readTrimmed(path)
		if state == "up" || time.Now().After(deadline) {
			return state
		}
		time.Sleep(20 * time.Millisecond)
	}
}
