package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/agent"
)

// netModules are the virtio-net driver and what it needs, in the image's
// load order; agent mode loads them only for a process given interfaces.
var netModules = map[string]bool{"failover": true, "net_failover": true, "virtio_net": true}

// setUpNetwork brings lo up, as container runtimes do in a new network
// namespace, and gives each interface its address.
func setUpNetwork(ifs []agent.Interface) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	err = linkUp(fd, "lo")
	unix.Close(fd)
	if err != nil || len(ifs) == 0 {
		return err
	}
	if r := loadModules(netModules); !r.ok {
		return fmt.Errorf("load the virtio-net driver: %v", r.fields)
	}
	for _, i := range ifs {
		mac, err := net.ParseMAC(i.MAC)
		if err != nil {
			return fmt.Errorf("interface %s: %w", i.MAC, err)
		}
		addr, err := netip.ParsePrefix(i.Addr)
		if err != nil || !addr.Addr().Is4() || addr.Bits() == 0 {
			return fmt.Errorf("interface %s: address %q: want IPv4 ADDR/PREFIX", i.MAC, i.Addr)
		}
		name, err := interfaceByMAC("/sys/class/net", mac, deviceWait)
		if err != nil {
			return err
		}
		if err := setIPv4(name, addr); err != nil {
			return err
		}
	}
	return nil
}

// interfaceByMAC waits for the interface whose address is mac to appear
// under sys (/sys/class/net) and returns its name.
func interfaceByMAC(sys string, mac net.HardwareAddr, timeout time.Duration) (string, error) {
	want := strings.ToLower(mac.String())
	deadline := time.Now().Add(timeout)
	for {
		links, _ := filepath.Glob(filepath.Join(sys, "*", "address"))
		for _, l := range links {
			b, err := os.ReadFile(l)
			if err == nil && strings.TrimSpace(string(b)) == want {
				return filepath.Base(filepath.Dir(l)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("no network interface with MAC " + want + " appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
