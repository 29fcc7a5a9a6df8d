package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenErrorNamesTheFix(t *testing.T) {
	for _, tc := range []struct {
		errno unix.Errno
		want  error
		text  string
	}{
		{unix.ENOENT, ErrNoTun, "modprobe tun"},
		{unix.EPERM, ErrPermission, "CAP_NET_ADMIN"},
		{unix.EACCES, ErrPermission, "ip tuntap add"},
	} {
		err := openError("tap0", "TUNSETIFF", tc.errno)
		if !errors.Is(err, tc.want) || !errors.Is(err, tc.errno) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("openError(%v) = %v; want it to wrap %v and %v and say %q", tc.errno, err, tc.want, tc.errno, tc.text)
		}
	}
}

func TestOpenRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a-name-too-long-for-ifnamsiz"} {
		if tp, err := Open(name); err == nil {
			tp.Close()
			t.Errorf("Open(%q) succeeded", name)
		}
	}
}

// requireRoot skips a test that needs a real tap unless it runs as root; as
// root it must be able to open one, so a missing /dev/net/tun fails the test.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a tap needs root (CAP_NET_ADMIN); the boot tests cover taps for real")
	}
}

func testName(t *testing.T) string {
	return fmt.Sprintf("govmmt%d", os.Getpid()%100000)
}

func TestRealTapCreateReadDeadlineAndClose(t *testing.T) {
	requireRoot(t)
	name := testName(t)
	tp, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(name); err != nil {
		t.Fatalf("tap %q not created: %v", name, err)
	}
	if err := tp.SetOffload(OffloadCsum | OffloadTSO4 | OffloadTSO6 | OffloadTSOECN); err != nil {
		t.Fatal(err)
	}
	if tp2, err := Open(name); err == nil {
		tp2.Close()
		t.Error("second Open of an attached tap succeeded; want EBUSY")
	} else if !errors.Is(err, unix.EBUSY) {
		t.Errorf("second Open = %v; want EBUSY", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := tp.Read(make([]byte, 2048))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := tp.SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after a past deadline = %v; want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after the deadline passed")
	}

	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(name); err == nil {
		t.Errorf("tap %q still exists after Close", name)
	}
}

// TestRealTapARP has the host kernel answer an ARP request written to the tap,
// which checks the 12-byte header framing in both directions.
func TestRealTapARP(t *testing.T) {
	requireRoot(t)
	name := testName(t)
	tp, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	hostIP, guestIP := freeSubnet(t)
	if err := configure(name, hostIP); err != nil {
		t.Fatal(err)
	}
	guestMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	frame := append(make([]byte, HeaderLen), arpRequest(guestMAC, guestIP, hostIP)...)
	if err := tp.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := tp.Writev([][]byte{frame[:HeaderLen], frame[HeaderLen:]}); err != nil || n != len(frame) {
		t.Fatalf("Writev = %d, %v; want %d", n, err, len(frame))
	}
	buf := make([]byte, 65562)
	for {
		n, err := tp.Read(buf)
		if err != nil {
			t.Fatalf("no ARP reply: %v", err)
		}
		if n < HeaderLen+42 {
			continue
		}
		eth := buf[HeaderLen:n]
		if binary.BigEndian.Uint16(eth[12:]) == 0x0806 && binary.BigEndian.Uint16(eth[20:]) == 2 {
			if !bytes.Equal(eth[0:6], guestMAC) || !bytes.Equal(eth[28:32], hostIP) {
				t.Fatalf("ARP reply to %v for %v; want to %v for %v", net.HardwareAddr(eth[0:6]), net.IP(eth[28:32]), guestMAC, hostIP)
			}
			return
		}
	}
}

// freeSubnet picks a host and a guest address in a /24 that no interface of
// this host uses, so configuring the tap cannot shadow a real route.
func freeSubnet(t *testing.T) (host, guest net.IP) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	candidates := [][3]byte{{198, 51, 100}, {203, 0, 113}, {10, 254, 254}, {172, 31, 254}}
next:
	for _, c := range candidates {
		subnet := &net.IPNet{IP: net.IPv4(c[0], c[1], c[2], 0).To4(), Mask: net.CIDRMask(24, 32)}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && (n.Contains(subnet.IP) || subnet.Contains(n.IP)) {
				continue next
			}
		}
		return net.IPv4(c[0], c[1], c[2], 1).To4(), net.IPv4(c[0], c[1], c[2], 2).To4()
	}
	t.Fatalf("every candidate subnet %v is in use on this host", candidates)
	return nil, nil
}

func arpRequest(mac net.HardwareAddr, from, to net.IP) []byte {
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, mac...)
	f = append(f, 0x08, 0x06)                // ARP
	f = append(f, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	f = append(f, mac...)
	f = append(f, from...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, to...)
}

// configure gives the interface an IPv4 address and brings it up, as an
// administrator would with ip(8).
func configure(name string, ip net.IP) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := ifr.SetInet4Addr(ip); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCSIFADDR, ifr); err != nil {
		return fmt.Errorf("SIOCSIFADDR: %w", err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}
