package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/pattern"
	"github.com/govmm/govmm/guest/report"
)

// recordBytes is the size of one record of the guest's ackrecords check.
const recordBytes = 4096

// killHost is the host's end of the tap the killed guests acknowledge over.
const killHost = "10.81.0.1"

// SIGKILL at random moments while the guest writes numbered records and
// flushes each, telling the host over TCP of every record whose flush
// returned: after each kill, every record the host was told of is in the
// image, through io_uring, blocking calls, and the default (which is
// inline calls where the image is on tmpfs, as in the sandbox). The next
// boot goes on from the record after the last one told, so the kills fall
// throughout the writes; a last boot writes the rest and powers off.
// GOVMM_SOAK_KILLS (20 in make test) is split across the three;
// GOVMM_SOAK_WRITES (100 here, 1000 in make soak) records are written
// through each; GOVMM_KILL_SEED repeats a run's choice of kills.
func TestAckedRecordsSurviveSIGKILL(t *testing.T) {
	e := testEnv(t)
	kills := soakSetting(t, "GOVMM_SOAK_KILLS", 20, 3)
	writes := soakSetting(t, "GOVMM_SOAK_WRITES", 100, 1)
	seed := int64(soakSetting(t, "GOVMM_KILL_SEED", int(time.Now().UnixNano()%1e9), 0))
	t.Logf("kill seed %d (GOVMM_KILL_SEED=%d makes the same choices: acknowledgements before each kill, part of a record's time after)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	modes := []string{"io_uring", "blocking", "auto"}
	if writes < 2*(kills/len(modes)+1) {
		t.Fatalf("GOVMM_SOAK_WRITES=%d: give at least two records for each of the %d kills of an aio path", writes, kills/len(modes)+1)
	}
	// Every boot enters the kernel through PVH (extracted once into a cache
	// of the test's): half the bzImage path's time to init in the
	// sandbox, and how the kernel starts is not what this test is about.
	vmlinuxCache(t)
	hostTap(t, "gvkill0", killHost+"/24")
	port := 7100
	lost := 0
	for i, mode := range modes {
		k := kills / len(modes)
		if i < kills%len(modes) {
			k++
		}
		t.Run("aio="+mode, func(t *testing.T) {
			s := killSeries{t: t, e: e, rng: rng, mode: mode, writes: uint64(writes), port: &port, lost: &lost}
			s.img = s.image()
			s.run(k)
		})
	}
}

// killSeries is one aio path's boots, kills and checks on one image.
type killSeries struct {
	t      *testing.T
	e      env
	rng    *rand.Rand
	mode   string
	img    string
	writes uint64 // records in all
	port   *int   // the next boot's port for acknowledgements
	boots  int
	// lost counts, over the whole test, boots the sandbox's emulation lost
	// (docs/sandbox.md): each is stopped like a kill and checked the same.
	lost *int
}

// image makes the zeroed image. io_uring and blocking calls get one off
// tmpfs where the test can find such a place (in the sandbox, whose TMPDIR
// is tmpfs, /var/tmp is the host's over 9p): on tmpfs io_uring hands every
// request to a worker thread and the default is inline calls instead.
func (s *killSeries) image() string {
	dir := s.t.TempDir()
	if s.mode != "auto" && onTmpfs(dir) {
		if d, err := os.MkdirTemp("/var/tmp", "govmm-kill-"); err == nil && !onTmpfs(d) {
			s.t.Cleanup(func() { os.RemoveAll(d) })
			dir = d
		}
	}
	img := filepath.Join(dir, "records.img")
	if err := os.WriteFile(img, make([]byte, s.writes*recordBytes), 0o644); err != nil {
		s.t.Fatal(err)
	}
	path := s.mode
	if s.mode == "auto" {
		path = "auto, which is io_uring here"
		if onTmpfs(dir) {
			path = "auto, which is inline calls on tmpfs"
		}
	}
	s.t.Logf("aio=%s: image %s on %s", s.mode, img, fsName(dir))
	s.t.Logf("the disk's path: %s", path)
	return img
}

func onTmpfs(dir string) bool { return fsName(dir) == "tmpfs" }

// fsName is the type of the file system dir is on, from the mount table:
// statfs over 9p reports the type of the host's file system.
func fsName(dir string) string {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	name, longest := "unknown", -1
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		at := strings.TrimSuffix(f[1], "/") + "/"
		if strings.HasPrefix(dir+"/", at) && len(at) > longest {
			name, longest = f[2], len(at)
		}
	}
	return name
}

// run boots kills times, killing govmm after a random number of
// acknowledgements and a random part of the time one takes, then once more
// to write the rest.
func (s *killSeries) run(kills int) {
	next := uint64(0)
	start := time.Now()
	k := 1
	for ; k <= kills; k++ {
		left := s.writes - next
		if left < 2 {
			s.t.Logf("aio=%s: %d records left, too few to kill govmm during them: %d kills, not %d", s.mode, left, k-1, kills)
			break
		}
		// Spread what is left over this boot and the ones after it; leave
		// this boot at least one record past the kill.
		mean := max(1, left/uint64(kills-k+2))
		killAt := min(1+s.rng.Uint64()%(2*mean), left-1)
		b := s.boot(next, left, killAt)
		if b.lostBy != "" {
			s.verify(next+b.acked, "a boot the sandbox lost", b)
			s.t.Logf("boot %d lost by the sandbox (%s), not counted as a kill: records %d to %d acknowledged before it, all in the image",
				s.boots, b.lostBy, next, int64(next+b.acked)-1)
			next += b.acked
			k--
			continue
		}
		if !b.killed {
			s.t.Fatalf("boot %d: govmm exited before the kill after %d of its %d records: %s\nstdout:\n%s\nstderr:\n%s",
				s.boots, b.acked, left, b.exit, lastBytes(b.stdout, 3000), lastBytes(b.stderr, 3000))
		}
		s.verify(next+b.acked, fmt.Sprintf("kill %d, %v after record %d's acknowledgement", k, b.delay, next+killAt-1), b)
		s.t.Logf("kill %d: records %d to %d acknowledged, killed %v after record %d's; all %d in the image",
			k, next, next+b.acked-1, b.delay.Round(time.Microsecond), next+killAt-1, next+b.acked)
		next += b.acked
	}
	if next == s.writes {
		s.t.Logf("aio=%s: %d kills, %d records, %d boots in %v", s.mode, k-1, s.writes, s.boots, time.Since(start).Round(time.Second))
		return
	}
	b := s.boot(next, s.writes-next, 0)
	name := fmt.Sprintf("ackrecords=/dev/vda:%d:%d:%d:%s:%d", killRecordSeed, next, s.writes-next, killHost, b.port)
	c, ok := report.Scan(strings.NewReader(b.stdout)).Check(name)
	if b.exit != nil || !ok || !c.OK || b.acked != s.writes-next {
		s.t.Fatalf("last boot: %v, check %s %+v (ran: %v), %d of %d acknowledged\nstdout:\n%s\nstderr:\n%s",
			b.exit, name, c, ok, b.acked, s.writes-next, lastBytes(b.stdout, 3000), lastBytes(b.stderr, 3000))
	}
	s.verify(s.writes, "the last boot", b)
	s.t.Logf("aio=%s: %d kills, %d records, %d boots in %v", s.mode, k-1, s.writes, s.boots, time.Since(start).Round(time.Second))
	if strings.Contains(b.stderr, "io_uring is not available") {
		s.t.Logf("aio=%s: this host has no io_uring; govmm made blocking calls", s.mode)
	}
}

// killSeed is the pattern seed of the records.
const killRecordSeed = 19

// killBoot is what one boot did.
type killBoot struct {
	port           int
	acked          uint64 // records acknowledged
	killed         bool
	delay          time.Duration // from the acknowledgement that chose the kill to the kill
	exit           error         // how govmm ended, if not by the kill
	lostBy         string        // the sandbox fault that lost the guest, if one did
	stdout, stderr string
}

// boot runs govmm writing count records from first; with killAt > 0 it
// SIGKILLs govmm once killAt of them are acknowledged.
func (s *killSeries) boot(first, count, killAt uint64) killBoot {
	s.t.Helper()
	s.boots++
	b := killBoot{port: *s.port}
	*s.port++
	acks := listenAcks(s.t, b.port, first, killAt)
	check := fmt.Sprintf("ackrecords=/dev/vda:%d:%d:%d:%s:%d", killRecordSeed, first, count, killHost, b.port)
	cmd := exec.Command(s.e.bin, "run", "--boot", "pvh", "--kernel", s.e.kernel, "--initrd", s.e.initrd, "--cpus", "1", "--memory", "128M",
		"--disk", "path="+s.img+",aio="+s.mode, "--net", "tap=gvkill0",
		"--cmdline", cmdline("govmm.check=net=eth0:10.81.0.2/24,"+check))
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timeout := time.NewTimer(bootTimeout + time.Duration(count)*time.Second/4)
	defer timeout.Stop()
	var err error
	select {
	case interval := <-acks.reached:
		// A random moment of the next record's write, flush and
		// acknowledgement, if it takes as long as the last.
		b.delay = time.Duration(s.rng.Int63n(int64(max(interval, time.Microsecond))))
		time.Sleep(b.delay)
		cmd.Process.Signal(syscall.SIGKILL) // fails only if govmm is gone, which Wait tells
		select {
		case err = <-exited:
		case <-time.After(killGrace):
			s.t.Fatalf("govmm (pid %d) did not exit %v after SIGKILL:\n%s", cmd.Process.Pid, killGrace, procState(cmd.Process.Pid))
		}
	case err = <-exited:
	case <-timeout.C:
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(killGrace):
			cmd.Process.Kill()
		}
		if s.sandboxLost(stderr.String()) {
			b.lostBy = sandboxRegisters
			b.acked, _ = acks.end()
			b.stdout, b.stderr = stdout.String(), stderr.String()
			return b
		}
		s.t.Fatalf("boot %d: no kill and no exit in time; stopped with SIGQUIT\nstdout:\n%s\nstderr (goroutines):\n%s",
			s.boots, lastBytes(stdout.String(), 3000), lastBytes(stderr.String(), 20000))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			b.killed, err = true, nil
		}
	}
	b.exit = err
	var ackErr error
	b.acked, ackErr = acks.end()
	b.stdout, b.stderr = stdout.String(), stderr.String()
	if ackErr != nil {
		s.t.Fatalf("boot %d: acknowledgements: %v\nstdout:\n%s\nstderr:\n%s", s.boots, ackErr, lastBytes(b.stdout, 3000), lastBytes(b.stderr, 3000))
	}
	return b
}

// sandboxRegisters is what govmm's SIGQUIT report says of a vCPU holding
// the sandbox kernel's registers instead of the guest's: the emulated SVM's
// fault, which loses the guest (docs/sandbox.md).
const sandboxRegisters = "is outside guest RAM: no guest kernel runs like this"

// sandboxLost reports whether a hung boot's report shows the sandbox's
// fault, in the sandbox only, and records it as FLAKY; at most two such
// boots are forgiven in a test, a third fails it.
func (s *killSeries) sandboxLost(stderr string) bool {
	if os.Getenv("GOVMM_IN_SANDBOX") != "1" || !strings.Contains(stderr, sandboxRegisters) || *s.lost == 2 {
		return false
	}
	*s.lost++
	recordFlaky(s.t, fmt.Sprintf("%s-boot%d", strings.ReplaceAll(s.t.Name(), "/", "-"), s.boots), "a vCPU held the sandbox kernel's registers: "+sandboxRegisters)
	return true
}

// verify checks that the image holds records 0 to n-1.
func (s *killSeries) verify(n uint64, when string, b killBoot) {
	s.t.Helper()
	img, err := os.ReadFile(s.img)
	if err != nil {
		s.t.Fatal(err)
	}
	want := make([]byte, recordBytes)
	for i := uint64(0); i < n; i++ {
		pattern.Fill(want, killRecordSeed, i*recordBytes)
		got := img[i*recordBytes : (i+1)*recordBytes]
		if bytes.Equal(got, want) {
			continue
		}
		what := "other bytes"
		switch {
		case bytes.Count(got, []byte{0}) == len(got):
			what = "zeros: the write is lost"
		case !bytes.Equal(got[:512], want[:512]) || !bytes.Equal(got[len(got)-512:], want[len(want)-512:]):
			what = "a torn or wrong record"
		}
		s.t.Fatalf("aio=%s, boot %d (%s): record %d of the %d acknowledged holds %s\nstderr:\n%s",
			s.mode, s.boots, when, i, n, what, lastBytes(b.stderr, 3000))
	}
}

// ackListener takes one guest's acknowledgements, "i\n" for each record i
// in order from first.
type ackListener struct {
	l       net.Listener
	reached chan time.Duration // once killAt are in: the time the last took
	done    chan error

	mu     sync.Mutex
	conn   net.Conn
	ending bool // govmm is gone: read only what is already here
	acked  uint64
}

func listenAcks(t *testing.T, port int, first, killAt uint64) *ackListener {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", killHost, port))
	if err != nil {
		t.Fatal(err)
	}
	a := &ackListener{l: l, reached: make(chan time.Duration, 1), done: make(chan error, 1)}
	go func() { a.done <- a.serve(first, killAt) }()
	return a
}

func (a *ackListener) serve(first, killAt uint64) error {
	c, err := a.l.Accept()
	if err != nil {
		return nil // ended before the guest connected: nothing acknowledged
	}
	a.mu.Lock()
	a.conn = c
	if a.ending {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
	a.mu.Unlock()
	sc := bufio.NewScanner(c)
	last := time.Now()
	for sc.Scan() {
		a.mu.Lock()
		want := first + a.acked
		a.mu.Unlock()
		if got, err := strconv.ParseUint(sc.Text(), 10, 64); err != nil || got != want {
			return fmt.Errorf("got %q after %d records, want %d", sc.Text(), want-first, want)
		}
		a.mu.Lock()
		a.acked++
		n := a.acked
		a.mu.Unlock()
		now := time.Now()
		if n == killAt {
			a.reached <- now.Sub(last)
		}
		last = now
	}
	return nil // EOF, or the deadline end set: a killed guest sends no FIN
}

// end stops listening once govmm is gone and returns how many records
// were acknowledged: every acknowledgement govmm passed to the host before
// it died counts, read or not.
func (a *ackListener) end() (uint64, error) {
	a.l.Close()
	a.mu.Lock()
	a.ending = true
	if a.conn != nil {
		a.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
	a.mu.Unlock()
	err := <-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		a.conn.Close()
	}
	return a.acked, err
}
