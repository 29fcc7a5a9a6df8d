package compare

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A Runtime launches one instance of a bundle and reports what it holds on
// the host. Drivers only launch, stop and look; timing and arithmetic are
// the measures' business.
type Runtime interface {
	Name() string
	// Start launches bundle as a fresh instance named id. The workload's
	// stdout lines arrive on the instance's Lines. A VM gets nic when it
	// is not nil; a container's network is its bundle's namespace.
	Start(bundle, id string, nic *NIC) (*Instance, error)
	// Exited blocks until the workload has exited on its own.
	Exited(ctx context.Context, in *Instance) error
	// Release frees what a workload that exited on its own left behind.
	Release(in *Instance) error
	// Teardown signals the instance and returns when all it held is gone.
	Teardown(in *Instance) error
	// Usage is what the instance holds on the host now.
	Usage(in *Instance) (Usage, error)
	// CPUSeconds is the host CPU time the instance has used so far.
	CPUSeconds(in *Instance) (float64, error)
}

// Usage is one instance's host memory, in bytes. -1: not applicable.
type Usage struct {
	PSS      int64 // sum over every host process of the instance
	Cgroup   int64 // a container's cgroup charge
	Overhead int64 // a VMM's memory outside guest RAM
}

// Line is one line of the workload's stdout and when the host read it.
type Line struct {
	Text string
	At   time.Time
}

// Instance is one launched workload.
type Instance struct {
	ID       string
	Bundle   string
	Launched time.Time
	Lines    <-chan Line // closed at EOF: every writer has gone

	lines   chan Line
	cmd     *exec.Cmd
	errLog  *os.File
	done    chan struct{} // closed when cmd has been waited for
	waitErr error
	eof     chan struct{}
	cgroup  *Cgroup    // a container's, found once
	guest   *guestConn // a classic VM's ports
	stats   string     // govmm's --stats file
	// statsData is the stats file as govmm left it, read at teardown.
	statsData []byte
}

// launch starts argv with stdout on a pipe read line by line. The pipe's
// write end goes to the child as is (not through a copying goroutine), so a
// runtime that hands it on to the workload and exits (runc run --detach)
// leaves the workload writing to it.
func launch(id, bundle string, argv []string) (*Instance, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	in, err := start(id, bundle, argv, w, time.Now())
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	go in.readLines(r)
	return in, nil
}

// start starts argv with stdout on stdout (nil: /dev/null) and stderr on a
// temporary file. launched is when the instance's clock starts.
func start(id, bundle string, argv []string, stdout *os.File, launched time.Time) (*Instance, error) {
	errLog, err := os.CreateTemp("", "compare-stderr-")
	if err != nil {
		return nil, err
	}
	os.Remove(errLog.Name())
	cmd := exec.Command(argv[0], argv[1:]...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = errLog
	cmd.Dir = bundle
	lines := make(chan Line, 64)
	in := &Instance{ID: id, Bundle: bundle, Launched: launched, Lines: lines, lines: lines,
		cmd: cmd, errLog: errLog, done: make(chan struct{}), eof: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		errLog.Close()
		return nil, err
	}
	go func() {
		in.waitErr = cmd.Wait()
		close(in.done)
	}()
	return in, nil
}

// readLines passes the workload's stdout, r, to Lines line by line until
// EOF.
func (in *Instance) readLines(r io.ReadCloser) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		in.lines <- Line{Text: sc.Text(), At: time.Now()}
	}
	r.Close()
	close(in.lines)
	close(in.eof)
}

// Stderr is what the runtime wrote to its standard error, and a classic
// VM's guest console, for messages.
func (in *Instance) Stderr() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", in.errLog.Fd()))
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	if in.guest != nil {
		if c := in.guest.console(); c != "" {
			s = strings.TrimSpace(s + "\nguest console: " + c)
		}
	}
	return s
}

func (in *Instance) close() {
	in.errLog.Close()
	if in.stats != "" {
		os.Remove(in.stats)
	}
}

// WaitLine returns the first line equal to want, or an error when the
// output ends first or ctx expires.
func (in *Instance) WaitLine(ctx context.Context, want string) (Line, error) {
	l, _, err := in.Collect(ctx, want)
	return l, err
}

// maxCollected bounds what Collect keeps of a workload's output.
const maxCollected = 1000

// Collect is WaitLine that also returns the lines before want.
func (in *Instance) Collect(ctx context.Context, want string) (Line, []string, error) {
	return in.collect(ctx, strconv.Quote(want), func(s string) bool { return strings.TrimSpace(s) == want })
}

// WaitPrefix returns the first line that starts with prefix.
func (in *Instance) WaitPrefix(ctx context.Context, prefix string) (Line, error) {
	l, _, err := in.collect(ctx, strconv.Quote(prefix+"..."), func(s string) bool { return strings.HasPrefix(s, prefix) })
	return l, err
}

func (in *Instance) collect(ctx context.Context, what string, match func(string) bool) (Line, []string, error) {
	var before []string
	for {
		select {
		case l, ok := <-in.Lines:
			if !ok {
				return Line{}, before, fmt.Errorf("%s: output ended before %s%s", in.ID, what, in.endNote())
			}
			if match(l.Text) {
				return l, before, nil
			}
			if strings.TrimSpace(l.Text) == "failed" { // the job's exit status was not 0
				return Line{}, before, fmt.Errorf("%s: the job failed%s; its output: %q", in.ID, in.stderrNote(), before)
			}
			if len(before) < maxCollected {
				before = append(before, l.Text)
			}
		case <-ctx.Done():
			return Line{}, before, fmt.Errorf("%s: no %s: %w%s", in.ID, what, ctx.Err(), in.stderrNote())
		}
	}
}

func (in *Instance) stderrNote() string {
	if s := in.Stderr(); s != "" {
		return "; its stderr: " + s
	}
	return ""
}

// endNote says how an instance whose output ended went: how it exited,
// once it has (its last words reach stderr just before: a note taken at
// the output's end can miss them), and its stderr. A VM's exit status
// tells a guest lost under the sandbox's emulation (the VM's own statuses)
// from a failure of the runtime.
func (in *Instance) endNote() string {
	select {
	case <-in.done:
	case <-time.After(endWait):
		return fmt.Sprintf("; still running %v later%s", endWait, in.stderrNote())
	}
	status := "exit status 0"
	if in.waitErr != nil {
		status = in.waitErr.Error()
	}
	return "; " + status + in.stderrNote()
}

// endWait bounds how long a failed run waits for the instance's exit.
const endWait = 5 * time.Second

// drain discards the rest of the output until EOF.
func (in *Instance) drain(ctx context.Context) error {
	for {
		select {
		case _, ok := <-in.Lines:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: output still open: %w", in.ID, ctx.Err())
		}
	}
}

func (in *Instance) wait(ctx context.Context) error {
	select {
	case <-in.done:
		return in.waitErr
	case <-ctx.Done():
		return fmt.Errorf("%s: still running: %w", in.ID, ctx.Err())
	}
}

// OCI drives runc, crun or any runtime with runc's command line. Instances
// run detached (run --detach): the runtime exits once the container runs,
// the container writes straight into the pipe, and nothing of the runtime
// stays on the host to blur the memory figures.
type OCI struct {
	name string
	path string
}

// NewOCI finds the runtime's binary by name or path.
func NewOCI(name string) (*OCI, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		base := filepath.Base(name)
		return nil, fmt.Errorf("runtime %s is not installed (%v): apt-get install %s", name, err, base)
	}
	return &OCI{name: filepath.Base(name), path: p}, nil
}

func (o *OCI) Name() string { return o.name }

func (o *OCI) Start(bundle, id string, _ *NIC) (*Instance, error) {
	return launch(id, bundle, []string{o.path, "run", "--detach", "--bundle", bundle, id})
}

// started waits for `run --detach` to return: the container exists.
func (o *OCI) started(ctx context.Context, in *Instance) error {
	if err := in.wait(ctx); err != nil {
		return fmt.Errorf("%s run %s: %v%s", o.name, in.ID, err, in.stderrNote())
	}
	return nil
}

func (o *OCI) Exited(ctx context.Context, in *Instance) error {
	if err := o.started(ctx, in); err != nil {
		return err
	}
	// The container held the pipe's only write end left.
	return in.drain(ctx)
}

// Teardown: SIGKILL, then delete (--force: the dead init may not have been
// reaped yet, which the runtime would take for still running).
func (o *OCI) Teardown(in *Instance) error {
	defer in.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := o.started(ctx, in); err != nil {
		o.cmd("delete", "--force", in.ID)
		return err
	}
	kerr := o.cmd("kill", in.ID, "KILL")
	derr := o.cmd("delete", "--force", in.ID)
	if derr != nil {
		return derr
	}
	if kerr != nil && !strings.Contains(kerr.Error(), "not running") {
		return kerr
	}
	return nil
}

// Release deletes a container that has exited.
func (o *OCI) Release(in *Instance) error {
	defer in.close()
	return o.cmd("delete", "--force", in.ID)
}

func (o *OCI) cmd(args ...string) error {
	out, err := exec.Command(o.path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", o.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InitPID is the container's init process on the host (`state ID`).
func (o *OCI) InitPID(id string) (int, error) {
	out, err := exec.Command(o.path, "state", id).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return 0, fmt.Errorf("%s state %s: %v: %s", o.name, id, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return 0, fmt.Errorf("%s state %s: %v", o.name, id, err)
	}
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("%s state %s: %v", o.name, id, err)
	}
	if st.Pid <= 0 {
		return 0, fmt.Errorf("%s state %s: no init process (status %s)", o.name, id, st.Status)
	}
	return st.Pid, nil
}

func (o *OCI) cgroup(in *Instance) (Cgroup, error) {
	if in.cgroup != nil {
		return *in.cgroup, nil
	}
	// crun writes the container's state only after its process runs: a
	// container that has printed "ready" may have no state yet until
	// `run --detach` returns.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := o.started(ctx, in); err != nil {
		return Cgroup{}, err
	}
	pid, err := o.InitPID(in.ID)
	if err != nil {
		return Cgroup{}, err
	}
	cg, err := processCgroup(pid)
	if err != nil {
		return Cgroup{}, err
	}
	in.cgroup = &cg
	return cg, nil
}

// Usage: the PSS of the processes in the container's cgroup, and the
// cgroup's own charge (which also counts page cache and kernel memory).
func (o *OCI) Usage(in *Instance) (Usage, error) {
	cg, err := o.cgroup(in)
	if err != nil {
		return Usage{}, err
	}
	pids, err := cg.Procs()
	if err != nil {
		return Usage{}, err
	}
	u := Usage{Overhead: -1}
	for _, pid := range pids {
		pss, _, err := processPSS(pid)
		if err != nil {
			return Usage{}, err
		}
		u.PSS += pss
	}
	if u.Cgroup, err = cg.Memory(); err != nil {
		return Usage{}, err
	}
	return u, nil
}

func (o *OCI) CPUSeconds(in *Instance) (float64, error) {
	cg, err := o.cgroup(in)
	if err != nil {
		return 0, err
	}
	return cg.CPUSeconds()
}

// Govmm drives `govmm run --bundle`: one process is the whole instance, its
// stdout is the workload's and it exits with the workload.
type Govmm struct {
	Path, Kernel, Initrd, Memory string
	RootImage                    string // the bundle's root image, made ready beforehand; empty: govmm's own
}

func (g *Govmm) setRootImage(p string) { g.RootImage = p }

func (g *Govmm) Name() string { return "govmm" }

func (g *Govmm) Start(bundle, id string, nic *NIC) (*Instance, error) {
	argv := []string{g.Path, "run", "--bundle", bundle,
		"--kernel", g.Kernel, "--initrd", g.Initrd, "--memory", g.Memory}
	if nic != nil {
		argv = append(argv, "--net", "tap="+nic.Tap+",ip="+nic.Addr.String())
	}
	if g.RootImage != "" {
		argv = append(argv, "--root-image", g.RootImage)
	}
	stats := filepath.Join(os.TempDir(), id+"-stats.json")
	argv = append(argv, "--stats", stats)
	in, err := launch(id, bundle, argv)
	if in != nil {
		in.stats = stats
	}
	return in, err
}

// startPhases reads the start's timeline from the --stats file govmm wrote
// as it ended, read at Teardown (cmd/govmm's bundle_start): where a
// bundle's start goes.
// The guest's clock and the host's are set against each other at init's
// "ready", so the host part includes the message's way out.
func (g *Govmm) startPhases(in *Instance) (map[string]float64, error) {
	data := in.statsData
	var st struct {
		Start *struct {
			ReadyMS       float64 `json:"ready_ms"`
			StartedMS     float64 `json:"started_ms"`
			FirstOutputMS float64 `json:"first_output_ms"`
			GuestReadyMS  float64 `json:"guest_ready_uptime_ms"`
		} `json:"bundle_start"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("govmm's start timeline: %w", err)
	}
	b := st.Start
	if b == nil || b.ReadyMS == 0 || b.StartedMS == 0 || b.FirstOutputMS == 0 {
		return nil, fmt.Errorf("govmm's start timeline misses an event: %s", data)
	}
	return map[string]float64{
		"start.phase.host":   b.ReadyMS - b.GuestReadyMS,
		"start.phase.kernel": b.GuestReadyMS,
		"start.phase.setup":  b.StartedMS - b.ReadyMS,
		"start.phase.exec":   b.FirstOutputMS - b.StartedMS,
	}, nil
}

func (g *Govmm) Exited(ctx context.Context, in *Instance) error {
	if err := in.wait(ctx); err != nil {
		return fmt.Errorf("govmm: %v%s", err, in.stderrNote())
	}
	return in.drain(ctx)
}

func (g *Govmm) Release(in *Instance) error { in.close(); return nil }

// bareCmdline boots govmm's guest to its init, which prints its report
// line first, and holds it there.
const bareCmdline = "console=ttyS0 reboot=k,panic_warm panic=-1 quiet govmm.hold=3600000"

// BareBoot boots the guest without a bundle: the start measures' yardstick
// for what the bundle path adds to a boot.
func (g *Govmm) BareBoot(id string) (*Instance, error) {
	return launch(id, "", []string{g.Path, "run", "--kernel", g.Kernel, "--initrd", g.Initrd,
		"--memory", g.Memory, "--cmdline", bareCmdline})
}

// Teardown: SIGTERM, then govmm's exit (its VM, memory and devices go with
// it). govmm passes the signal to the process, which dies of it: govmm's
// status is then 128+15, as runc run's would be.
func (g *Govmm) Teardown(in *Instance) error {
	defer in.close()
	in.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := in.wait(ctx)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 128+int(syscall.SIGTERM) {
		err = nil
	}
	if err != nil {
		in.cmd.Process.Kill()
		return fmt.Errorf("govmm teardown: %v%s", err, in.stderrNote())
	}
	if in.stats != "" {
		in.statsData, err = os.ReadFile(in.stats)
		if err != nil {
			return fmt.Errorf("govmm's --stats file: %w", err)
		}
	}
	return nil
}

// Usage: govmm's PSS (the guest RAM it has touched included) and its Rss
// outside the guest RAM mapping.
func (g *Govmm) Usage(in *Instance) (Usage, error) { return vmmUsage(in.cmd.Process.Pid) }

func (g *Govmm) CPUSeconds(in *Instance) (float64, error) {
	return processCPUSeconds(in.cmd.Process.Pid)
}
