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
//
// The systems of a round are up together, each on its own lane, and take
// turns phase by phase: the nested sandbox's speed drifts by a third over
// tens of seconds, more than the VMMs differ, so one system's phase is
// compared with the other's run seconds apart, not a whole run later.
const (
	ioPort = 7700
	// ioStepTimeout bounds each step of a guest: its boot, each phase, its
	// power-off. A step, not a guest's whole life, since one system's
	// phases wait while the others take their turns.
	ioStepTimeout = 2 * time.Minute
	ioRetries     = 1 // boots after a failed I/O run
)

// ioLane is one system's own disk image, tap and subnet, and the listener
// its guest's agent connects to.
type ioLane struct {
	image, tap, hostAddr, guestAddr, mac string
	l                                    *net.TCPListener
}

func newIOLane(i int) *ioLane {
	return &ioLane{
		tap:       fmt.Sprintf("gvbench%d", i),
		hostAddr:  fmt.Sprintf("10.88.%d.1", i),
		guestAddr: fmt.Sprintf("10.88.%d.2", i),
		mac:       fmt.Sprintf("52:54:00:00:88:%02x", i+2),
	}
}

// cmdline configures the guest's NIC and starts the agent.
func (l *ioLane) cmdline() string {
	return fmt.Sprintf("console=ttyS0 reboot=k,panic_warm panic=-1 quiet govmm.check=net=eth0:%s/24,agent=%s:%d",
		l.guestAddr, l.hostAddr, ioPort)
}

func (s system) ioArgs(l *ioLane) []string {
	if !s.isQEMU() {
		return []string{"--disk", "path=" + l.image, "--net", "tap=" + l.tap + ",mac=" + l.mac}
	}
	// QEMU's defaults otherwise: writeback cache, thread pool I/O, no vhost.
	return []string{
		"-drive", "file=" + l.image + ",format=raw,if=none,id=disk0",
		"-device", "virtio-blk-pci,drive=disk0",
		"-netdev", "tap,id=net0,ifname=" + l.tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=" + l.mac,
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

// prepareLanes makes one lane per system: its disk image, its tap with the
// host's address, and a listener on that address.
func prepareLanes(c *config, n int) (lanes []*ioLane, cleanup func(), err error) {
	cleanup = func() {
		for _, l := range lanes {
			l.close()
		}
	}
	for i := range n {
		l := newIOLane(i)
		lanes = append(lanes, l)
		if err := l.open(c); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return lanes, cleanup, nil
}

func (l *ioLane) open(c *config) error {
	f, err := os.CreateTemp("", "govmm-bench-*.img")
	if err != nil {
		return err
	}
	l.image = f.Name()
	// Real bytes, not a hole: a sparse file reads faster than any disk.
	_, err = io.CopyN(f, pattern.NewReader(1), int64(mibBytes(c)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	exec.Command("ip", "link", "del", l.tap).Run() // left over from a killed run
	for _, args := range [][]string{
		{"tuntap", "add", "dev", l.tap, "mode", "tap"},
		{"addr", "add", l.hostAddr + "/24", "dev", l.tap},
		{"link", "set", l.tap, "up"},
	} {
		if err := ip(args...); err != nil {
			return fmt.Errorf("%w (the I/O benchmark needs root and iproute2)", err)
		}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", l.hostAddr, ioPort))
	if err != nil {
		return err
	}
	l.l = ln.(*net.TCPListener)
	return nil
}

func (l *ioLane) close() {
	if l.l != nil {
		l.l.Close()
	}
	exec.Command("ip", "link", "del", l.tap).Run()
	if l.image != "" {
		os.Remove(l.image)
	}
}

// runIO runs the I/O systems together once per round (ioRound). A system
// whose run failed is booted again alone. It returns how many boots failed
// and how many runs stayed without a sample after their retry.
func runIO(c *config, log io.Writer) (results []result, failed, missing int, err error) {
	systems := selected(c, ioSystems())
	lanes, cleanup, err := prepareLanes(c, len(systems))
	if err != nil {
		return nil, 0, 0, err
	}
	defer cleanup()
	results = make([]result, len(systems))
	for i, s := range systems {
		results[i].name = s.name
	}
	for run := 1; run <= c.ioRuns; run++ {
		order := roundOrder(run, len(systems))
		samples, errs := ioRound(c, pick(systems, order), pick(lanes, order))
		for k, i := range order {
			s, smp, err := systems[i], samples[k], errs[k]
			for try := 1; err != nil; try++ {
				failed++
				fmt.Fprintf(log, "bench: I/O run %d/%d %s: FAILED: %v\n", run, c.ioRuns, s.name, err)
				if try > ioRetries {
					break
				}
				// The nested sandbox loses a guest now and then, whichever
				// VMM runs it; another boot keeps the medians on c.ioRuns.
				fmt.Fprintf(log, "bench: I/O run %d/%d %s: again, alone\n", run, c.ioRuns, s.name)
				one, errs := ioRound(c, []system{s}, []*ioLane{lanes[i]})
				smp, err = one[0], errs[0]
			}
			if err != nil {
				missing++
				continue
			}
			smp.round = run
			results[i].samples = append(results[i].samples, smp)
			fmt.Fprintf(log, "bench: I/O run %d/%d %s: read %.1f MiB/s, write %.1f MiB/s, %.0f IOPS, tx %.1f MiB/s, rx %.1f MiB/s, rtt %.0f µs\n",
				run, c.ioRuns, s.name, smp.rate(c, "read"), smp.rate(c, "write"), smp.perSecond(c, "randread"),
				smp.rate(c, "tx"), smp.rate(c, "rx"), float64(smp.io["echo"].latency.Microseconds()))
		}
	}
	return results, failed, missing, nil
}

// roundOrder is the order the n systems take their turns in round run: it
// flips every round, so neither system always goes first.
func roundOrder(run, n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if run%2 == 0 {
		slices.Reverse(order)
	}
	return order
}

func pick[T any](all []T, order []int) []T {
	out := make([]T, len(order))
	for k, i := range order {
		out[k] = all[i]
	}
	return out
}

// ioRound boots the systems, each on its lane, then runs each phase on each
// system in turn, and returns each system's sample or why it has none. A
// system that fails leaves the round; the others go on.
func ioRound(c *config, systems []system, lanes []*ioLane) ([]sample, []error) {
	samples := make([]sample, len(systems))
	errs := make([]error, len(systems))
	guests := make([]*ioGuest, len(systems))
	for k, s := range systems {
		guests[k], errs[k] = bootIO(c, s, lanes[k])
	}
	for _, ph := range phases {
		for k, g := range guests {
			if g == nil {
				continue
			}
			if err := g.phase(c, ph); err != nil {
				errs[k], guests[k] = g.close(err), nil
			}
		}
	}
	for k, g := range guests {
		if g != nil {
			smp, err := g.finish()
			samples[k], errs[k] = smp, g.close(err)
		}
	}
	return samples, errs
}

// ioGuest is a system booted for the I/O phases, its agent connected.
type ioGuest struct {
	p      *vmmProcess
	q      *qmpClient // QEMU only
	conn   *net.TCPConn
	a      *agent
	stats  func(context.Context) (map[string]uint64, error)
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	dir    string
	smp    sample
}

// bootIO starts a system with the lane's disk and NIC and waits for its
// agent to connect.
func bootIO(c *config, s system, lane *ioLane) (g *ioGuest, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "govmm-bench-")
	if err != nil {
		cancel()
		return nil, err
	}
	qmpName := filepath.Base(dir) + ".qmp"
	path, args := s.command(c, dir, qmpName, lane.cmdline())
	p, err := launch(path, append(args, s.ioArgs(lane)...), !s.isQEMU())
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, err
	}
	g = &ioGuest{p: p, ctx: ctx, cancel: cancel, dir: dir, smp: sample{io: map[string]phaseResult{}}}
	g.stats = func(ctx context.Context) (map[string]uint64, error) {
		return govmmStats(ctx, p.cmd.Process.Pid, statsPath(dir))
	}
	step, done := context.WithTimeout(ctx, ioStepTimeout)
	defer done()
	if s.isQEMU() {
		if g.q, err = dialQMP(step, qmpName, p.con.eof); err != nil {
			return nil, g.close(p.withExitStatus(err))
		}
		g.stats = func(context.Context) (map[string]uint64, error) { return g.q.vcpuStats() }
	}
	if _, err := p.con.waitReport(step); err != nil {
		return nil, g.close(p.withExitStatus(err))
	}
	deadline, _ := step.Deadline()
	lane.l.SetDeadline(deadline)
	if g.conn, err = lane.l.AcceptTCP(); err != nil {
		return nil, g.close(fmt.Errorf("the guest's agent did not connect to %s:%d: %w", lane.hostAddr, ioPort, err))
	}
	g.a = &agent{conn: g.conn, in: bufio.NewReader(g.conn)}
	return g, nil
}

// step bounds the guest's next step: the agent's and QMP's connections get
// the returned context's deadline.
func (g *ioGuest) step() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(g.ctx, ioStepTimeout)
	deadline, _ := ctx.Deadline()
	g.conn.SetDeadline(deadline)
	if g.q != nil {
		g.q.conn.SetDeadline(deadline)
	}
	return ctx, cancel
}

// phase runs one phase and keeps its result.
func (g *ioGuest) phase(c *config, ph phase) error {
	ctx, cancel := g.step()
	defer cancel()
	stats := func() (map[string]uint64, error) { return g.stats(ctx) }
	r, err := measure(g.p.cmd.Process.Pid, stats, func() (time.Duration, error) { return g.a.run(c, ph) })
	if err != nil {
		return fmt.Errorf("phase %s: %w", ph.name, err)
	}
	g.smp.io[ph.name] = r
	return nil
}

// finish has the guest power off and returns the run's sample.
func (g *ioGuest) finish() (sample, error) {
	ctx, cancel := g.step()
	defer cancel()
	if _, err := g.a.command("quit"); err != nil {
		return g.smp, err
	}
	if g.q != nil {
		if err := quitAfterPoweroff(g.q); err != nil {
			return g.smp, err
		}
	}
	return g.smp, g.p.waitExit(ctx, &g.smp)
}

// close releases the guest. After an error it stops the VMM first, and
// returns err with the VMM's state; it returns nil after a clean exit.
func (g *ioGuest) close(err error) error {
	if g.conn != nil {
		g.conn.Close()
	}
	if g.q != nil {
		g.q.Close()
	}
	if err != nil {
		g.p.stop()
	}
	g.p.reap()
	if err != nil {
		err = fmt.Errorf("%w%s", err, g.p.describe())
	}
	g.cancel()
	os.RemoveAll(g.dir)
	return err
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
