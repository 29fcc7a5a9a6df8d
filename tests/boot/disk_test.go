package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm/guest/pattern"
	"github.com/govmm/govmm/guest/report"
)

// patternImage writes a raw image of n bytes of the test pattern for seed.
func patternImage(t *testing.T, name string, seed, n uint64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, pattern.NewReader(seed), int64(n)); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// passed returns the named guest check, failing the test unless it passed.
func passed(t *testing.T, o outcome, name string) report.Check {
	t.Helper()
	c, ok := o.guest.Check(name)
	if !ok || !c.OK {
		t.Fatalf("guest check %q: %+v (ran: %v)\nstdout:\n%s\nstderr:\n%s", name, c, ok, o.stdout, o.stderr)
	}
	t.Logf("guest check %s: %s", name, c.Detail)
	return c
}

func wantField(t *testing.T, c report.Check, key, want string) {
	t.Helper()
	if got, _ := c.Field(key); got != want {
		t.Errorf("guest check %s: %s = %q, want %q", c.Name, key, got, want)
	}
}

// bootWith boots the test initramfs with extra govmm flags and command line.
func bootWith(t *testing.T, e env, flags []string, extra ...string) outcome {
	t.Helper()
	args := append([]string{"--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--cmdline", cmdline(extra...)}, flags...)
	o := run(t, e, args...)
	if o.status != statusPoweredOff || o.guest.Report == nil {
		t.Fatalf("want a guest report and exit status 0, got status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
	}
	return o
}

// Two disks at once: the guest reads each whole and its digest, size and
// serial match what the host wrote. The first goes through io_uring, the
// second the default way (inline where TMPDIR is tmpfs, as in the sandbox).
func TestGuestReadsHostWrittenDisks(t *testing.T) {
	e := testEnv(t)
	a := patternImage(t, "a.img", 1, 8<<20)
	b := patternImage(t, "b.img", 2, 3<<20)
	o := bootWith(t, e, []string{"--disk", "path=" + a + ",serial=govmm-a,aio=io_uring", "--disk", "path=" + b + ",ro"},
		"govmm.check=disk=/dev/vda,disk=/dev/vdb")
	ca := passed(t, o, "disk=/dev/vda")
	wantField(t, ca, "sha256", fileSHA256(t, a))
	wantField(t, ca, "size", fmt.Sprint(8<<20))
	wantField(t, ca, "serial", "govmm-a")
	cb := passed(t, o, "disk=/dev/vdb")
	wantField(t, cb, "sha256", fileSHA256(t, b))
	wantField(t, cb, "size", fmt.Sprint(3<<20))
	wantField(t, cb, "ro", "1") // /sys/block/vdb/ro
}

// What the guest flushed is in the file even when govmm is killed right
// after, through io_uring and the default way: govmm holds back no write
// it acknowledged. The host's page cache outlives govmm, so this does not
// show that a flush reaches the disk; tests/powercut cuts the power to.
func TestFlushedWritesSurviveSIGKILL(t *testing.T) {
	e := testEnv(t)
	for _, aio := range []string{"io_uring", "auto"} {
		t.Run("aio="+aio, func(t *testing.T) { flushedWritesSurviveSIGKILL(t, e, aio) })
	}
}

func flushedWritesSurviveSIGKILL(t *testing.T, e env, aio string) {
	img := filepath.Join(t.TempDir(), "w.img")
	if err := os.WriteFile(img, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	const seed, mib = 7, 4
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	run := startGovmm(t, ctx, e, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M",
		"--disk", "path="+img+",aio="+aio, "--cmdline", cmdline(fmt.Sprintf("govmm.check=diskwrite=/dev/vda:%d:%d", seed, mib), "govmm.exit=hang"))
	var seen []string
	name := fmt.Sprintf("diskwrite=/dev/vda:%d:%d", seed, mib)
	sc := run.lines
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if c, ok := report.ParseCheck(sc.Text()); ok && c.Name == name {
			if !c.OK {
				t.Fatalf("guest check %s failed: %s", name, c.Detail)
			}
			break
		}
	}
	// The guest reported its fsync returned: kill govmm without a chance to
	// write anything more.
	if err := run.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	run.cmd.Wait()
	if sc.Err() != nil || len(seen) == 0 || !strings.Contains(seen[len(seen)-1], name) {
		t.Fatalf("never saw the guest's %s line\nstdout:\n%s\nstderr:\n%s", name, strings.Join(seen, "\n"), run.stderr.String())
	}
	got := make([]byte, mib<<20)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, mib<<20)
	pattern.Fill(want, seed, 0)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("byte %d of the image is %#x after SIGKILL, the guest flushed %#x\nlast lines seen:\n%s\nstderr:\n%s",
				i, got[i], want[i], strings.Join(seen[max(0, len(seen)-5):], "\n"), run.stderr.String())
		}
	}
}

func TestReadOnlyDiskRefusesWrites(t *testing.T) {
	e := testEnv(t)
	img := patternImage(t, "ro.img", 3, 1<<20)
	before := fileSHA256(t, img)
	o := bootWith(t, e, []string{"--disk", "path=" + img + ",ro"}, "govmm.check=diskro=/dev/vda")
	c := passed(t, o, "diskro=/dev/vda")
	wantField(t, c, "refused", "true")
	if after := fileSHA256(t, img); after != before {
		t.Errorf("the read-only image changed: sha256 %s, was %s", after, before)
	}
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestDiscardPunchesHoles(t *testing.T) {
	e := testEnv(t)
	img := patternImage(t, "d.img", 4, 32<<20)
	before := allocated(t, img)
	o := bootWith(t, e, []string{"--disk", "path=" + img}, fmt.Sprintf("govmm.check=discard=/dev/vda:0:%d", 16<<20))
	passed(t, o, fmt.Sprintf("discard=/dev/vda:0:%d", 16<<20))
	after := allocated(t, img)
	t.Logf("image allocation %d KiB before, %d KiB after discarding 16 MiB", before>>10, after>>10)
	if before-after < 15<<20 {
		t.Errorf("discarding 16 MiB freed only %d KiB of the image", (before-after)>>10)
	}
	if st, _ := os.Stat(img); st.Size() != 32<<20 {
		t.Errorf("image size changed to %d", st.Size())
	}
}

// The initramfs's init mounts the ext4 image from /dev/vda and runs the init
// found there, which reports from the disk's root.
func TestBootFromExt4Root(t *testing.T) {
	e := testEnv(t)
	rootfs := os.Getenv("GOVMM_ROOTFS")
	if rootfs == "" {
		t.Fatal("GOVMM_ROOTFS is not set: `make test` builds the ext4 image and passes its path")
	}
	o := bootWith(t, e, []string{"--disk", "path=" + rootfs + ",ro"}, "root=/dev/vda", "rootfstype=ext4")
	if got := o.guest.Report.RootDev; got != "/dev/vda" {
		t.Errorf("guest reports its root is on %q, want /dev/vda", got)
	}
	if got := o.guest.Report.RootFS; got != "ext4" {
		t.Errorf("guest reports its root file system is %q, want ext4\nstdout:\n%s", got, o.stdout)
	}
}
