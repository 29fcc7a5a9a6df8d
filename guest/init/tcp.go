package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// tcpArgs is the HOST:PORT:MIB of tcpsend and tcprecv. Both move the
// pattern stream (package pattern) seeded with PORT, so that two
// connections carry different bytes; the host sends the same stream to
// tcprecv, though only the digest is checked.
type tcpArgs struct {
	host netip.AddrPort
	mib  uint64
}

// tcpTimeout bounds a whole transfer, connecting included.
const tcpTimeout = 4 * time.Minute

func parseTCP(arg string) (tcpArgs, error) {
	p, err := splitArgs(arg, "HOST", "PORT", "MIB")
	if err != nil {
		return tcpArgs{}, err
	}
	var a tcpArgs
	if a.host, err = parseHostPort(p[0], p[1]); err != nil {
		return a, err
	}
	a.mib, err = parseMiB(p[2])
	return a, err
}

func (a tcpArgs) seed() uint64 { return uint64(a.host.Port()) }

// dial connects to the host, retrying for 30 s: the host may start
// listening after the guest booted. The connection's deadline is set.
func (a tcpArgs) dial() (*net.TCPConn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(a.host))
		if err == nil {
			return conn, conn.SetDeadline(time.Now().Add(tcpTimeout))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to %v: %w", a.host, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// closeAndWait shuts down the guest's side of conn and waits for the host to
// close its own: the host has then read all that was sent. A check that
// returned at once would let the guest power off with the stream's end still
// in its socket's send buffer, lost with the VM.
func closeAndWait(conn *net.TCPConn) error {
	if err := conn.CloseWrite(); err != nil {
		return fmt.Errorf("shut down sending: %w", err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return fmt.Errorf("wait for the host to close: %w", err)
	}
	return nil
}
