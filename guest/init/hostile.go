package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/hostile"
	"github.com/govmm/govmm/guest/report"
)

// hostileCheck (hostile=CASES:DISK:SPAREDISK:SPARENIC:HOST:PORT) runs the
// malicious-driver cases of package hostile that CASES names ("all", a
// case, or a prefix ending in *) against the spare disk and NIC (vdb,
// eth1) and the virtio-rng. After each case it proves the devices the
// guest kept still work: it reads DISK's first MiB past the page cache
// and has the host's echo server at HOST:PORT return a line. Each case
// has its own line, hostile:NAME; this check's line sums them up.
type hostileCheck struct {
	cases, disk, spareDisk, spareNIC string
	echo                             netip.AddrPort
}

func parseHostile(arg string) (hostileCheck, error) {
	p, err := splitArgs(arg, "CASES", "DISK", "SPAREDISK", "SPARENIC", "HOST", "PORT")
	if err != nil {
		return hostileCheck{}, err
	}
	c := hostileCheck{cases: p[0], disk: "/dev/" + p[1], spareDisk: p[2], spareNIC: p[3]}
	for _, name := range []string{p[1], p[2]} {
		if _, err := parseDevice("/dev/" + name); err != nil {
			return c, err
		}
	}
	if _, err := parseInterface(p[3]); err != nil {
		return c, err
	}
	c.echo, err = parseHostPort(p[4], p[5])
	return c, err
}

// healthTimeout bounds each proof: a wedged device fails the case, not init.
const healthTimeout = 20 * time.Second

func (c hostileCheck) run() result {
	for _, path := range []string{c.disk, "/sys/class/block/" + c.spareDisk, "/sys/class/net/" + c.spareNIC} {
		if err := waitFor(path, deviceWait); err != nil {
			return failed(err)
		}
	}
	drainConsole()
	ran, bad, err := hostile.Run(c.cases, hostile.Spares{Disk: c.spareDisk, NIC: c.spareNIC}, c.health,
		func(ch report.Check) {
			fmt.Println(ch.Line())
			drainConsole()
		})
	if err != nil {
		return failed(err, kv("cases", ran), kv("failed", bad))
	}
	return result{ok: bad == 0, fields: []report.Field{kv("cases", ran), kv("failed", bad)}}
}

func (c hostileCheck) health() ([]report.Field, error) {
	var sum string
	err := withTimeout(healthTimeout, "disk read", func() (err error) {
		sum, err = directSHA256(c.disk, 1<<20)
		return err
	})
	fields := []report.Field{kv("disk_sha256", sum)}
	if err != nil {
		return fields, err
	}
	start := time.Now()
	if err := echo(c.echo); err != nil {
		return fields, err
	}
	return append(fields, kv("echo_ms", time.Since(start).Milliseconds())), nil
}

// drainConsole waits until the serial console has sent what init wrote
// (tcdrain): the cases write to the virtio-console, whose output reaches
// the host's stdout too, and must not land in the middle of a report line
// the UART is still sending.
func drainConsole() {
	unix.IoctlSetInt(1, unix.TCSBRK, 1) //nolint:errcheck // stdout may not be a tty; nothing to wait for then
}

// directSHA256 hashes the first n bytes of dev read with O_DIRECT, so the
// device, not the page cache, answers.
func directSHA256(dev string, n int) (string, error) {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "", err
	}
	defer unix.Munmap(buf) //nolint:errcheck // our own buffer
	for off := 0; off < n; {
		k, err := unix.Pread(fd, buf[off:], int64(off))
		if err != nil || k == 0 {
			return "", fmt.Errorf("read %s at %d: %v", dev, off, err)
		}
		off += k
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:]), nil
}

// echo sends a line to the host's echo server and waits for it back.
func echo(host netip.AddrPort) error {
	conn, err := net.DialTimeout("tcp4", host.String(), healthTimeout)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(healthTimeout)); err != nil {
		return err
	}
	line := []byte(strings.Repeat("govmm hostile echo ", 3) + "\n")
	if _, err := conn.Write(line); err != nil {
		return fmt.Errorf("echo write: %w", err)
	}
	got := make([]byte, len(line))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("echo read: %w", err)
	}
	if !bytes.Equal(got, line) {
		return fmt.Errorf("echo returned %q", got)
	}
	return nil
}
