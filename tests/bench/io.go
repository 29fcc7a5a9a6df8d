package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// The I/O benchmark boots each system with a virtio disk on a raw image
// and a virtio NIC on a tap, and has the guest's agent check (guest/init/
// agent.go) run one phase at a time while the host reads the VMM's KVM
// exits and CPU time between phases, with the guest idle.
const (
	ioTap       = "gvbench0"
	ioHostAddr  = "10.88.0.1"
	ioGuestAddr = "10.88.0.2"
	ioPort      = 7700
	ioMAC       = "52:54:00:00:88:02"
	ioTimeout   = 4 * time.Minute
	ioRetries   = 1 // boots after a failed I/O run
)

// ioCmdline configures the guest's NIC and starts the agent.
var ioCmdline = fmt.Sprintf("console=ttyS0 reboot=k,panic_warm panic=-1 quiet govmm.check=net=eth0:%s/24,agent=%s:%d",
	ioGuestAddr, ioHostAddr, ioPort)

// ioSetup is what an I/O run adds to a system's command line.
type ioSetup struct{ image, tap string }

func (s system) ioArgs(io ioSetup) []string {
	if !s.isQEMU() {
		return []string{"--disk", "path=" + io.image, "--net", "tap=" + io.tap + ",mac=" + ioMAC}
	}
	// QEMU's defaults otherwise: writeback cache, thread pool I/O, no vhost.
	return []string{
		"-drive", "file=" + io.image + ",format=raw,if=none,id=disk0",
		"-device", "virtio-blk-pci,drive=disk0",
		"-netdev", "tap,id=net0,ifname=" + io.tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=" + ioMAC,
	}
}

// ioSystems are compared on I/O: QEMU's pc machine stands for QEMU, its
// devices being the same virtio-pci ones on every machine type.
func ioSystems() []system {
	all := allSystems()
	return []system{all[0], all[2]}
}

// phase is one agent command and how to read its outcome.
type phase struct {
	name  string
	cmd   func(c *config) string
	bytes func(c *config) uint64 // moved, for MiB/s and exits per MiB
	ops   func(c *config) uint64 // operations, for IOPS and exits per op
}

const ioDevice = "/dev/vda"

func mibBytes(c *config) uint64 { return uint64(c.ioMiB) << 20 }

var phases = []phase{
	{name: "read", cmd: func(c *config) string { return fmt.Sprintf("read %s %d", ioDevice, c.ioMiB) }, bytes: mibBytes},
	{name: "write", cmd: func(c *config) string { return fmt.Sprintf("write %s %d", ioDevice, c.ioMiB) }, bytes: mibBytes},
	{name: "randread", cmd: func(c *config) string { return fmt.Sprintf("randread %s %d %d", ioDevice, c.ioOps, c.ioDepth) },
		bytes: func(c *config) uint64 { return uint64(c.ioOps) * 4096 },
		ops:   func(c *config) uint64 { return uint64(c.ioOps) }},
	{name: "tx", cmd: func(c *config) string { return fmt.Sprintf("send %d", c.ioMiB) }, bytes: mibBytes},
	{name: "rx", cmd: func(c *config) string { return fmt.Sprintf("recv %d", c.ioMiB) }, bytes: mibBytes},
	{name: "echo", cmd: func(c *config) string { return fmt.Sprintf("echo %d", c.ioEchoes) },
		ops: func(c *config) uint64 { return uint64(c.ioEchoes) }},
}

// phaseResult is one phase of one run, measured on the host.
type phaseResult struct {
	wall    time.Duration
	exits   uint64
	cpu     time.Duration // VMM user+system, all threads
	latency time.Duration // median round trip, for echo

	// userExits are the exits the VMM served itself, where it says (govmm).
	userExits uint64
	hasUser   bool

	// kvm is how much each of KVM's vCPU statistics grew (-exit-detail).
	kvm map[string]uint64
}

// prepareIO makes the disk image and the tap the runs share.
func prepareIO(c *config) (ioSetup, func(), error) {
	f, err := os.CreateTemp("", "govmm-bench-*.img")
	if err != nil {
		return ioSetup{}, nil, err
	}
	// Real bytes, not a hole: a sparse file reads faster than any disk.
	_, err = io.CopyN(f, pattern.NewReader(1), int64(mibBytes(c)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	cleanup := func() { os.Remove(f.Name()) }
	if err != nil {
		cleanup()
		return ioSetup{}, nil, fmt.Errorf("disk image: %w", err)
	}
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	exec.Command("ip", "link", "del", ioTap).Run() // left over from a killed run
	for _, args := range [][]string{
		{"tuntap", "add", "dev", ioTap, "mode", "tap"},
		{"addr", "add", ioHostAddr + "/24", "dev", ioTap},
		{"link", "set", ioTap, "up"},
	} {
		if err := ip(args...); err != nil {
			cleanup()
			return ioSetup{}, nil, fmt.Errorf("%w (the I/O benchmark needs root and iproute2)", err)
		}
	}
	return ioSetup{image: f.Name(), tap: ioTap}, func() {
		exec.Command("ip", "link", "del", ioTap).Run()
		cleanup()
	}, nil
}

// runIO runs every I/O system once per round, interleaved as the boots are.
// It returns how many boots failed and how many runs stayed without a
// sample after their retry.
func runIO(c *config, log io.Writer) (results []result, failed, missing int, err error) {
	setup, cleanup, err := prepareIO(c)
	if err != nil {
		return nil, 0, 0, err
	}
	defer cleanup()
	l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ioHostAddr, ioPort))
	if err != nil {
		return nil, 0, 0, err
	}
	defer l.Close()
	systems := selected(c, ioSystems())
	results = make([]result, len(systems))
	for i, s := range systems {
		results[i].name = s.name
	}
	for run := 1; run <= c.ioRuns; run++ {
		for i, s := range systems {
			smp, err := ioRun(c, s, setup, l.(*net.TCPListener))
			for try := 1; err != nil; try++ {
				failed++
				fmt.Fprintf(log, "bench: I/O run %d/%d %s: FAILED: %v\n", run, c.ioRuns, s.name, err)
				if try > ioRetries {
					break
				}
				// The nested sandbox loses a guest now and then, whichever
				// VMM runs it; another boot keeps the medians on c.ioRuns.
				fmt.Fprintf(log, "bench: I/O run %d/%d %s: again\n", run, c.ioRuns, s.name)
				smp, err = ioRun(c, s, setup, l.(*net.TCPListener))
			}
			if err != nil {
				missing++
				continue
			}
			results[i].samples = append(results[i].samples, smp)
			fmt.Fprintf(log, "bench: I/O run %d/%d %s: read %.1f MiB/s, write %.1f MiB/s, %.0f IOPS, tx %.1f MiB/s, rx %.1f MiB/s, rtt %.0f µs\n",
				run, c.ioRuns, s.name, smp.rate(c, "read"), smp.rate(c, "write"), smp.perSecond(c, "randread"),
				smp.rate(c, "tx"), smp.rate(c, "rx"), float64(smp.io["echo"].latency.Microseconds()))
		}
	}
	return results, failed, missing, nil
}

// ioRun boots one system with the disk and NIC and drives its agent.
func ioRun(c *config, s system, setup ioSetup, l *net.TCPListener) (smp sample, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "govmm-bench-")
	if err != nil {
		return smp, err
	}
	defer os.RemoveAll(dir)
	qmpName := filepath.Base(dir) + ".qmp"
	path, args := s.command(c, dir, qmpName, ioCmdline)
	p, err := launch(path, append(args, s.ioArgs(setup)...), !s.isQEMU())
	if err != nil {
		return smp, err
	}
	stopTimer := context.AfterFunc(ctx, p.stop)
	defer func() {
		stopTimer()
		if err != nil {
			p.stop()
		}
		p.reap()
		if err != nil {
			err = fmt.Errorf("%w%s", err, p.describe())
		}
	}()
	stats := func() (map[string]uint64, error) { return govmmStats(ctx, p.cmd.Process.Pid, statsPath(dir)) }
	var q *qmpClient
	if s.isQEMU() {
		if q, err = dialQMP(ctx, qmpName, p.con.eof); err != nil {
			return smp, p.withExitStatus(err)
		}
		defer q.Close()
		stats = q.vcpuStats
	}
	if _, err := p.con.waitReport(ctx); err != nil {
		return smp, p.withExitStatus(err)
	}
	l.SetDeadline(time.Now().Add(2 * time.Minute))
	conn, err := l.AcceptTCP()
	if err != nil {
		return smp, fmt.Errorf("the guest's agent did not connect to %s:%d: %w", ioHostAddr, ioPort, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	a := &agent{conn: conn, in: bufio.NewReader(conn)}
	smp.io = map[string]phaseResult{}
	for _, ph := range phases {
		r, err := measure(p.cmd.Process.Pid, stats, func() (time.Duration, error) { return a.run(c, ph) })
		if err != nil {
			return smp, fmt.Errorf("phase %s: %w", ph.name, err)
		}
		smp.io[ph.name] = r
	}
	if _, err := a.command("quit"); err != nil {
		return smp, err
	}
	if q != nil {
		if err := quitAfterPoweroff(q); err != nil {
			return smp, err
		}
	}
	return smp, p.waitExit(ctx, &smp)
}

// measure runs f between two readings of the VMM's exits and CPU time. For
// govmm, reading the exits costs a signal and a file write, outside the
// measured span.
func measure(pid int, stats func() (map[string]uint64, error), f func() (time.Duration, error)) (phaseResult, error) {
	before, err := stats()
	if err != nil {
		return phaseResult{}, err
	}
	cpu0, err := processCPU(pid)
	if err != nil {
		return phaseResult{}, err
	}
	start := time.Now()
	lat, err := f()
	wall := time.Since(start)
	if err != nil {
		return phaseResult{}, err
	}
	cpu1, err := processCPU(pid)
	if err != nil {
		return phaseResult{}, err
	}
	after, err := stats()
	if err != nil {
		return phaseResult{}, err
	}
	user := func(m map[string]uint64) uint64 { return m[userExitPrefix+"pio"] + m[userExitPrefix+"mmio"] }
	r := phaseResult{wall: wall, exits: after["exits"] - before["exits"], cpu: cpu1 - cpu0, latency: lat, kvm: map[string]uint64{}}
	for k, v := range after {
		if !strings.HasPrefix(k, userExitPrefix) && v > before[k] {
			r.kvm[k] = v - before[k]
		}
	}
	if _, ok := after[userExitPrefix+"pio"]; ok {
		r.userExits = user(after) - user(before)
		r.hasUser = true
	}
	return r, nil
}

// agent is the host's end of the guest's agent connection.
type agent struct {
	conn *net.TCPConn
	in   *bufio.Reader
}

// command sends one line and returns the reply after "ok".
func (a *agent) command(cmd string) (string, error) {
	if _, err := io.WriteString(a.conn, cmd+"\n"); err != nil {
		return "", err
	}
	return a.reply(cmd)
}

func (a *agent) reply(cmd string) (string, error) {
	line, err := a.in.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: no reply from the guest: %w", cmd, err)
	}
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("%s: guest says %q", cmd, line)
}

// run carries out one phase; for echo it returns the median round trip.
func (a *agent) run(c *config, ph phase) (time.Duration, error) {
	cmd := ph.cmd(c)
	switch ph.name {
	case "tx":
		if _, err := io.WriteString(a.conn, cmd+"\n"); err != nil {
			return 0, err
		}
		n, err := io.CopyN(io.Discard, a.in, int64(ph.bytes(c)))
		if err != nil {
			return 0, fmt.Errorf("%s: received %d bytes: %w", cmd, n, err)
		}
		return 0, nil
	case "rx":
		if _, err := io.WriteString(a.conn, cmd+"\n"); err != nil {
			return 0, err
		}
		if _, err := io.CopyN(a.conn, pattern.NewReader(2), int64(ph.bytes(c))); err != nil {
			return 0, fmt.Errorf("%s: %w", cmd, err)
		}
		_, err := a.reply(cmd)
		return 0, err
	case "echo":
		if _, err := io.WriteString(a.conn, cmd+"\n"); err != nil {
			return 0, err
		}
		rtts := make([]time.Duration, c.ioEchoes)
		b := []byte{'x'}
		for i := range rtts {
			start := time.Now()
			if _, err := a.conn.Write(b); err != nil {
				return 0, err
			}
			if _, err := io.ReadFull(a.in, b); err != nil {
				return 0, fmt.Errorf("%s: round trip %d: %w", cmd, i, err)
			}
			rtts[i] = time.Since(start)
		}
		if _, err := a.reply(cmd); err != nil {
			return 0, err
		}
		slices.Sort(rtts)
		return rtts[len(rtts)/2], nil
	}
	_, err := a.command(cmd)
	return 0, err
}

// processCPU is the user plus system time of a running process, all its
// threads, from /proc/PID/stat (fields 14 and 15, in clock ticks).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports here.
const clockTick = 10 * time.Millisecond

func parseStatCPU(stat string) (time.Duration, error) {
	// The command name may hold spaces and parentheses: skip past the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc/PID/stat: no ')' after the command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the name, want at least 13", len(f))
	}
	var total time.Duration
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %q: %w", s, err)
		}
		total += time.Duration(n) * clockTick
	}
	return total, nil
}

// rate is a phase's throughput in MiB/s.
func (s sample) rate(c *config, name string) float64 {
	ph, _ := findPhase(name)
	return mib(ph.bytes(c)) / s.io[name].wall.Seconds()
}

// perSecond is a phase's operations per second.
func (s sample) perSecond(c *config, name string) float64 {
	ph, _ := findPhase(name)
	return float64(ph.ops(c)) / s.io[name].wall.Seconds()
}

func findPhase(name string) (phase, bool) {
	for _, ph := range phases {
		if ph.name == name {
			return ph, true
		}
	}
	return phase{}, false
}
