package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sample is what one boot measured. RSS and exits are taken at the init
// marker, CPU time when the VMM has exited.
type sample struct {
	toInit, toExit     time.Duration
	uptime             float64 // guest seconds at init
	rssTotal, rssGuest uint64
	cpu                time.Duration
	exits              map[string]uint64      // KVM vCPU statistics, summed over vCPUs
	io                 map[string]phaseResult // I/O runs only, by phase name
	round              int                    // the round, which pairs the systems' samples
}

// overhead is the VMM's own resident memory.
func (s sample) overhead() uint64 { return s.rssTotal - s.rssGuest }

// boot runs one system once, from launch to exit.
func boot(c *config, s system) (smp sample, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "govmm-bench-")
	if err != nil {
		return smp, err
	}
	defer os.RemoveAll(dir)
	qmpName := filepath.Base(dir) + ".qmp"
	path, args := s.command(c, dir, qmpName, guestCmdline)
	p, err := launch(path, args, !s.isQEMU())
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
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v (-timeout): %w", c.timeout, err)
		}
		if err != nil {
			err = fmt.Errorf("%w%s", err, p.describe())
		}
	}()
	var q *qmpClient
	if s.isQEMU() {
		if q, err = dialQMP(ctx, qmpName, p.con.eof); err != nil {
			return smp, p.withExitStatus(err)
		}
		defer q.Close()
	}
	if smp, err = p.atInit(ctx, c, q, statsPath(dir)); err != nil {
		return smp, err
	}
	if q != nil {
		if err := quitAfterPoweroff(q); err != nil {
			return smp, err
		}
	}
	return smp, p.waitExit(ctx, &smp)
}

// vmmProcess is a running VMM and its console.
type vmmProcess struct {
	cmd      *exec.Cmd
	con      *console
	stderr   *tail
	start    time.Time
	dumps    bool // stops on SIGQUIT, saying where its vCPUs are
	stopOnce sync.Once
}

// launch starts a VMM. dumps says it is govmm, which answers SIGQUIT with
// its vCPUs' state.
func launch(path string, args []string, dumps bool) (*vmmProcess, error) {
	p := &vmmProcess{cmd: exec.Command(path, args...), stderr: &tail{}, dumps: dumps}
	// Its own process group, so that a timeout kills any helper too; and no
	// VMM outlives bench.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.con = readConsole(stdout)
	return p, nil
}

// atInit waits for the init marker and takes the measurements due there:
// RSS first, since asking a VMM for its exits costs it memory (govmm's
// first --stats snapshot about 0.3 MiB: reading KVM's statistics and
// encoding JSON), then the exits, which the guest, idle in its hold, moves
// little in the millisecond that reading smaps takes.
func (p *vmmProcess) atInit(ctx context.Context, c *config, q *qmpClient, stats string) (smp sample, err error) {
	marker, err := p.con.waitReport(ctx)
	if err != nil {
		return smp, p.withExitStatus(err)
	}
	smp.toInit, smp.uptime = marker.at.Sub(p.start), marker.rep.UptimeS
	if marker.rep.CPUs != c.cpus {
		return smp, fmt.Errorf("guest reports %d CPUs, want %d", marker.rep.CPUs, c.cpus)
	}
	if smp.rssTotal, smp.rssGuest, err = readRSS(p.cmd.Process.Pid, c.memBytes); err != nil {
		return smp, err
	}
	if q != nil {
		smp.exits, err = q.vcpuStats()
	} else {
		smp.exits, err = govmmStats(ctx, p.cmd.Process.Pid, stats)
	}
	return smp, err
}

// waitExit waits for the VMM to end and checks that the guest powered off.
func (p *vmmProcess) waitExit(ctx context.Context, smp *sample) error {
	select {
	case <-p.con.eof:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := p.cmd.Wait()
	smp.toExit, smp.cpu = time.Since(p.start), cpuTime(p.cmd.ProcessState)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", filepath.Base(p.cmd.Path), err)
	case p.con.done != "poweroff":
		return fmt.Errorf("guest did not announce poweroff (GOVMM-DONE %q)", p.con.done)
	}
	return nil
}

func (p *vmmProcess) kill() {
	// An error (ESRCH) only means the group is gone already.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// quitWait bounds how long a VMM takes to print its state on SIGQUIT.
const quitWait = 15 * time.Second

// stop ends a run that failed or timed out. govmm is asked first where its
// vCPUs are, so that a hung guest leaves more than its last console lines.
func (p *vmmProcess) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.con.eof:
			return // exited already
		default:
		}
		if p.dumps {
			p.stderr.quitting()
			if p.cmd.Process.Signal(syscall.SIGQUIT) == nil {
				select {
				case <-p.con.eof:
				case <-time.After(quitWait):
				}
			}
		}
		p.kill()
	})
}

// reap kills the VMM unless it has been waited for, and waits.
func (p *vmmProcess) reap() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.kill()
	<-p.con.eof
	// Only reaps: the error at hand says why it was killed.
	p.cmd.Wait()
}

// withExitStatus adds the VMM's exit status to err if the VMM has closed
// its console, that is, is exiting: the status may say why.
func (p *vmmProcess) withExitStatus(err error) error {
	select {
	case <-p.con.eof:
	default:
		return err
	}
	if werr := p.cmd.Wait(); werr != nil {
		return fmt.Errorf("%w (%s: %v)", err, filepath.Base(p.cmd.Path), werr)
	}
	return err
}

// quitAfterPoweroff waits for the guest to end, which -no-shutdown turns
// into a stopped VM, then asks QEMU to exit.
func quitAfterPoweroff(q *qmpClient) error {
	if err := q.waitEvent("SHUTDOWN"); err != nil {
		return err
	}
	// QEMU may close the socket before its reply arrives.
	if _, err := q.execute("quit", nil); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// userExitPrefix marks, in govmmStats's map, the exits govmm's own code
// served (port I/O and MMIO on its buses), as opposed to those KVM handled.
const userExitPrefix = "govmm_user_"

// virtqueuePrefix marks govmm's virtqueue counters in govmmStats's map.
const virtqueuePrefix = "virtqueue "

// govmmStats has govmm write its --stats file (SIGUSR1) and reads it back.
// The file is renamed into place, so it is whole once it exists.
func govmmStats(ctx context.Context, pid int, path string) (map[string]uint64, error) {
	// A file from an earlier reading would be taken for this one.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return nil, fmt.Errorf("SIGUSR1 to govmm: %w", err)
	}
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var f struct {
				KVM    map[string]uint64            `json:"kvm"`
				User   map[string]uint64            `json:"user_exits"`
				Queues map[string]map[string]uint64 `json:"virtqueues"`
			}
			if err := json.Unmarshal(data, &f); err != nil {
				return nil, fmt.Errorf("govmm --stats file: %w", err)
			}
			if len(f.KVM) == 0 {
				return nil, errors.New("govmm --stats file has no KVM statistics")
			}
			// The exits govmm served itself, beside KVM's own counters.
			for k, v := range f.User {
				f.KVM[userExitPrefix+k] = v
			}
			// And what each virtqueue served: "virtqueue net0.q1 kicks".
			for q, counts := range f.Queues {
				for k, v := range counts {
					f.KVM[fmt.Sprintf("%s%s %s", virtqueuePrefix, q, k)] = v
				}
			}
			return f.KVM, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no --stats file from govmm after SIGUSR1: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// describe is the end of the VMM's stderr and console, for error messages.
func (p *vmmProcess) describe() string {
	var b strings.Builder
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		b.WriteString("\n  VMM stderr:\n    " + strings.ReplaceAll(s, "\n", "\n    "))
	}
	if s := strings.TrimSpace(p.stderr.state()); s != "" {
		b.WriteString("\n  VMM state when stopped (SIGQUIT):\n    " + strings.ReplaceAll(s, "\n", "\n    "))
	}
	select {
	case <-p.con.eof:
		if len(p.con.lines) > 0 {
			b.WriteString("\n  last console lines:\n    " + strings.Join(p.con.lines, "\n    "))
		}
	default:
	}
	return b.String()
}
