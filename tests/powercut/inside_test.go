package powercut

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm"
	"github.com/govmm/govmm/guest/report"
)

// powerSwitchPort is bin/sandbox's -power-switch: the byte 1 written to
// this I/O port stops the sandbox at once.
const powerSwitchPort = 0xf4

// insideSandbox is the test's half in the sandbox: mount the sandbox's
// disk, run govmm on the images there until the guest reports its records
// acknowledged, leave that report in dir (on the host, over 9p), and cut
// the power. It returns only if something failed before the cut.
func insideSandbox(dir string) int {
	err := runInside(dir)
	fmt.Fprintf(os.Stderr, "powercut: %v\n", err)
	return 1
}

func runInside(dir string) error {
	if err := holdDirtyPages(); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "powercut-disk.")
	if err != nil {
		return err
	}
	if err := unix.Mount("/dev/vda", mnt, "ext2", unix.MS_NOATIME, ""); err != nil {
		return fmt.Errorf("mount the sandbox's disk /dev/vda on %s: %w", mnt, err)
	}
	if err := writeCanary(filepath.Join(mnt, canaryFile)); err != nil {
		return err
	}
	acks, err := runGovmm(dir, mnt)
	if err != nil {
		return err
	}
	// A 9p write is done on the host once it returns: no sync needed, and
	// none wanted, which would flush the sandbox's disk too.
	if err := os.WriteFile(filepath.Join(dir, "acks"), []byte(strings.Join(acks, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return cutPower()
}

// holdDirtyPages keeps the sandbox's own writeback from carrying to its
// disk a write no flush asked for. Periodic writeback waits an hour: 0
// would not do, as it wakes the flusher at the first dirty page. And the
// disk gets a share of the background threshold of its own: a device that
// has completed no writeback yet has a share of 0 and would be written
// back at its first dirty page (mm/page-writeback.c, wb_over_bg_thresh).
func holdDirtyPages() error {
	for path, v := range map[string]string{
		"/proc/sys/vm/dirty_writeback_centisecs": "360000",
		"/proc/sys/vm/dirty_expire_centisecs":    "360000",
		"/sys/block/vda/bdi/min_ratio":           "50",
	} {
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return err
		}
	}
	return nil
}

// writeCanary overwrites the canary file and does not flush it.
func writeCanary(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(fill(canaryAfter, canarySize), 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// guestTimeout bounds the guest's boot and writes; the sandbox boots it in
// under a minute.
const guestTimeout = 8 * time.Minute

// runGovmm boots the guest on the images in mnt and returns its records
// checks' report lines once it has printed them all. govmm keeps running:
// the power cut ends it.
func runGovmm(dir, mnt string) ([]string, error) {
	var checks []string
	args := []string{"run", "--kernel", os.Getenv("GOVMM_KERNEL"), "--initrd", os.Getenv("GOVMM_INITRD"), "--memory", "256M"}
	for i, d := range disks {
		args = append(args, "--disk", "path="+filepath.Join(mnt, d.file)+",aio="+d.aio)
		checks = append(checks, checkName(d, device(i)))
	}
	args = append(args, "--cmdline", govmm.DefaultCmdline+" quiet govmm.exit=hang govmm.check="+strings.Join(checks, ","))
	cmd := exec.Command(os.Getenv("GOVMM_BIN"), args...)
	log, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// A guest that never reports is stopped, and its console ends.
	time.AfterFunc(guestTimeout, func() { cmd.Process.Kill() })
	lines, err := awaitChecks(io.TeeReader(stdout, log), checks)
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%w (guest limit %v, govmm's status: %v)", err, guestTimeout, cmd.Wait())
	}
	return lines, nil
}

// awaitChecks reads the guest's console until each named check reported.
func awaitChecks(r io.Reader, names []string) ([]string, error) {
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		c, ok := report.ParseCheck(sc.Text())
		if !ok || !want[c.Name] {
			continue
		}
		lines = append(lines, c.Line())
		delete(want, c.Name)
		if len(want) == 0 {
			return lines, nil
		}
	}
	return nil, fmt.Errorf("govmm's console ended before the guest reported %v (%v)", names, sc.Err())
}

// cutPower writes to bin/sandbox's power switch; the sandbox stops before
// the write returns.
func cutPower() error {
	f, err := os.OpenFile("/dev/port", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("the power switch: %w", err)
	}
	if _, err := f.WriteAt([]byte{1}, powerSwitchPort); err != nil {
		return fmt.Errorf("the power switch: %w", err)
	}
	time.Sleep(10 * time.Second)
	return fmt.Errorf("the sandbox still runs 10 s after writing to its power switch (port %#x): was it started with -power-switch?", powerSwitchPort)
}
