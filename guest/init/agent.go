package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// agentCheck (agent=HOST:PORT) connects to a benchmark on the host and
// runs the I/O it asks for, one command at a time, so that the host can
// read the VMM's exit counters between commands with the guest idle. The
// protocol is lines of text; each command is answered by "ok ..." or
// "err MESSAGE", except where raw bytes follow:
//
//	read DEV MIB            sequential 1 MiB O_DIRECT reads from the start
//	write DEV MIB           sequential 1 MiB O_DIRECT writes, then fdatasync
//	randread DEV OPS DEPTH  OPS random 4 KiB O_DIRECT reads, DEPTH at a time
//	send MIB                the guest writes MIB MiB of raw bytes, no reply line
//	recv MIB                MIB MiB of raw bytes follow the command
//	echo N                  N single bytes, each written back as it arrives
//	quit                    ends the check
type agentCheck struct{ host netip.AddrPort }

func parseAgent(arg string) (agentCheck, error) {
	p, err := splitArgs(arg, "HOST", "PORT")
	if err != nil {
		return agentCheck{}, err
	}
	host, err := parseHostPort(p[0], p[1])
	return agentCheck{host}, err
}

// agentIdle bounds the wait for the host's next command.
const agentIdle = 10 * time.Minute

func (c agentCheck) run() result {
	conn, err := tcpArgs{host: c.host}.dial()
	if err != nil {
		return failed(err)
	}
	defer conn.Close()
	in := bufio.NewReader(conn)
	served := 0
	for {
		conn.SetDeadline(time.Now().Add(agentIdle))
		line, err := in.ReadString('\n')
		if err != nil {
			return failed(fmt.Errorf("read command: %w", err), kv("served", served))
		}
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "quit" {
			fmt.Fprintln(conn, "ok")
			return pass(kv("served", served))
		}
		reply, err := agentCommand(f, in, conn)
		if err != nil {
			reply = "err " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		if reply != "" {
			if _, err := io.WriteString(conn, reply+"\n"); err != nil {
				return failed(fmt.Errorf("reply: %w", err), kv("served", served))
			}
		}
		served++
	}
}

// agentCommand runs one command; an empty reply means none is due.
func agentCommand(f []string, in *bufio.Reader, out io.Writer) (string, error) {
	if len(f) == 0 {
		return "", fmt.Errorf("empty command")
	}
	args := f[1:]
	switch f[0] {
	case "read", "write":
		if len(args) != 2 {
			return "", fmt.Errorf("%s wants DEV MIB", f[0])
		}
		dev, err := parseDevice(args[0])
		if err != nil {
			return "", err
		}
		mib, err := parseMiB(args[1])
		if err != nil {
			return "", err
		}
		return timed(func() error { return sequentialIO(dev, mib, f[0] == "write") })
	case "randread":
		if len(args) != 3 {
			return "", fmt.Errorf("randread wants DEV OPS DEPTH")
		}
		dev, err := parseDevice(args[0])
		if err != nil {
			return "", err
		}
		ops, err := parseUint("OPS", args[1])
		if err != nil || ops == 0 || ops > 1<<24 {
			return "", fmt.Errorf("OPS %q: want 1 to %d", args[1], 1<<24)
		}
		depth, err := parseUint("DEPTH", args[2])
		if err != nil || depth == 0 || depth > 256 {
			return "", fmt.Errorf("DEPTH %q: want 1 to 256", args[2])
		}
		return timed(func() error { return randomReads(dev, ops, int(depth)) })
	case "send", "recv":
		if len(args) != 1 {
			return "", fmt.Errorf("%s wants MIB", f[0])
		}
		mib, err := parseMiB(args[0])
		if err != nil {
			return "", err
		}
		if f[0] == "send" {
			// No reply: the host counts the bytes.
			_, err := io.CopyN(out, zeroReader{}, int64(mib<<20))
			return "", err
		}
		return timed(func() error {
			_, err := io.CopyN(io.Discard, in, int64(mib<<20))
			return err
		})
	case "echo":
		if len(args) != 1 {
			return "", fmt.Errorf("echo wants N")
		}
		n, err := parseUint("N", args[0])
		if err != nil || n == 0 || n > 1<<20 {
			return "", fmt.Errorf("N %q: want 1 to %d", args[0], 1<<20)
		}
		var b [1]byte
		for range n {
			if _, err := io.ReadFull(in, b[:]); err != nil {
				return "", err
			}
			if _, err := out.Write(b[:]); err != nil {
				return "", err
			}
		}
		return "ok", nil
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

func timed(f func() error) (string, error) {
	start := time.Now()
	if err := f(); err != nil {
		return "", err
	}
	return fmt.Sprintf("ok ns=%d", time.Since(start).Nanoseconds()), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// alignedBuffer is page-aligned memory, as O_DIRECT wants.
func alignedBuffer(size int) ([]byte, func(), error) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return b, func() { unix.Munmap(b) }, nil
}

// sequentialIO reads or writes mib MiB from the start of dev, bypassing
// the guest's page cache so that every byte crosses the device, one call at
// a time as dd or fio with one job would. The calls are raw (rawPositional)
// so that the exits counted per MiB are the device's, not this program's
// runtime's.
func sequentialIO(dev string, mib uint64, write bool) error {
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_WRONLY
	}
	fd, err := unix.Open(dev, flags|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	buf, free, err := alignedBuffer(1 << 20)
	if err != nil {
		return err
	}
	defer free()
	for i := range mib {
		off := int64(i << 20)
		n, err := rawPositional(fd, buf, off, write)
		if err == nil && n != len(buf) {
			err = fmt.Errorf("short transfer of %d bytes (is the disk at least %d MiB?)", n, mib)
		}
		if err != nil {
			return fmt.Errorf("%s at %d: %w", dev, off, err)
		}
	}
	if write {
		if err := unix.Fdatasync(fd); err != nil {
			return fmt.Errorf("fdatasync %s: %w", dev, err)
		}
	}
	return nil
}

// randomReads reads ops 4 KiB blocks at random aligned offsets of dev,
// depth of them in flight at once, from one thread through native AIO as
// fio's libaio engine does. A goroutine per read would measure this
// program's scheduler instead: on one vCPU each blocked read holds its P
// until sysmon takes it back, 20 µs or more later, with a timer interrupt.
func randomReads(dev string, ops uint64, depth int) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	size, err := unix.Seek(fd, 0, io.SeekEnd)
	if err != nil || size < 4096 {
		return fmt.Errorf("size of %s: %d bytes, %v", dev, size, err)
	}
	blocks := uint64(size / 4096)
	buf, free, err := alignedBuffer(depth * 4096)
	if err != nil {
		return err
	}
	defer free()
	a, err := newAIO(depth)
	if err != nil {
		return err
	}
	defer a.close()
	// A read's tag is its slot in buf.
	read := func(slot uint64) aioRead {
		return aioRead{fd: fd, buf: buf[slot*4096 : (slot+1)*4096], off: int64(rand.Uint64N(blocks) * 4096), tag: slot}
	}
	var batch []aioRead
	for slot := range uint64(min(uint64(depth), ops)) {
		batch = append(batch, read(slot))
	}
	submitted, completed := uint64(len(batch)), uint64(0)
	for {
		if err := a.submit(batch); err != nil {
			return err
		}
		if completed == ops {
			return nil
		}
		batch = batch[:0]
		var failed error
		err := a.wait(1, func(slot uint64, res int64) {
			completed++
			switch {
			case failed != nil, res == 4096:
			case res < 0:
				failed = fmt.Errorf("%s: 4 KiB read: %w", dev, unix.Errno(-res))
			default:
				failed = fmt.Errorf("%s: 4 KiB read returned %d bytes", dev, res)
			}
			if submitted < ops {
				batch = append(batch, read(slot))
				submitted++
			}
		})
		if err == nil {
			err = failed
		}
		if err != nil {
			return err
		}
	}
}
