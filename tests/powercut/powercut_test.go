package powercut

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/pattern"
	"github.com/govmm/govmm/guest/report"
)

// l1DirEnv, set, makes the test binary the sandbox's side (inside.go): the
// directory, shared with the host, where it leaves what the guest said.
const l1DirEnv = "GOVMM_POWERCUT_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(l1DirEnv); dir != "" {
		os.Exit(insideSandbox(dir))
	}
	os.Exit(m.Run())
}

// exitPowerCut is bin/sandbox's status when the command cut its power.
const exitPowerCut = 123

// A disk the guest writes records to, through one of govmm's I/O paths:
// io_uring's IORING_OP_FSYNC, and the blocking fdatasync that aio=blocking
// (and the inline path on a memory file system) use.
type disk struct {
	file, aio string
	seed      uint64 // the records' pattern
}

var disks = []disk{{"uring.img", "io_uring", 11}, {"blocking.img", "blocking", 12}}

const (
	records   = 32
	imageSize = 1 << 20
	// An image's bytes before the test: a pattern the records differ from
	// (not zeros, which mke2fs -d would leave as holes to allocate).
	beforeSeed = 1000
	// The canary is a file the sandbox writes and never flushes: if it is
	// in the disk after the power cut, the sandbox's page cache reached
	// the disk by itself and the test could not tell a flush from none.
	canaryFile   = "canary.img"
	canaryBefore = 2000
	canaryAfter  = 2001
	canarySize   = 256 << 10
)

func checkName(d disk, dev string) string {
	return fmt.Sprintf("records=%s:%d:%d", dev, d.seed, records)
}

func device(i int) string { return "/dev/vd" + string(rune('a'+i)) }

func TestFlushedRecordsSurvivePowerCut(t *testing.T) {
	sandbox := hostEnv(t)
	dir := t.TempDir()
	fs := makeFileSystem(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	args := append(sandbox[1:], "-timeout", "12m", "-disk", fs, "-power-switch", "--", self)
	cmd := exec.CommandContext(ctx, sandbox[0], args...)
	cmd.Env = append(os.Environ(), l1DirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitPowerCut {
		t.Fatalf("the sandbox's power was not cut (%v, want status %d)\nsandbox:\n%s\ngovmm in the sandbox:\n%s", err, exitPowerCut, out.String(), console)
	}
	t.Logf("power cut %v after starting the sandbox", time.Since(start).Round(time.Second))
	acks, err := os.ReadFile(filepath.Join(dir, "acks"))
	if err != nil {
		t.Fatalf("the sandbox cut its power without the guest's acknowledgements: %v\nsandbox:\n%s\ngovmm in the sandbox:\n%s", err, out.String(), console)
	}
	guest := report.Scan(bytes.NewReader(acks))
	for i, d := range disks {
		t.Run("aio="+d.aio, func(t *testing.T) { checkRecords(t, fs, dir, guest, d, device(i)) })
	}
	canary := dump(t, fs, dir, canaryFile)
	if bytes.Equal(canary, fill(canaryAfter, canarySize)) {
		t.Errorf("%s, written in the sandbox and never flushed, is on its disk after the power cut: the sandbox's page cache reached the disk by itself, so this test cannot tell a flush from none", canaryFile)
	} else if !bytes.Equal(canary, fill(canaryBefore, canarySize)) {
		t.Errorf("%s changed, but not to what the sandbox wrote", canaryFile)
	} else {
		t.Logf("%s, written in the sandbox and never flushed, is not on its disk: what is only cached dies with the power", canaryFile)
	}
}

// checkRecords fails unless every record the guest reported acknowledged
// is in the image on the host.
func checkRecords(t *testing.T, fs, dir string, guest report.Console, d disk, dev string) {
	c, ok := guest.Check(checkName(d, dev))
	if !ok {
		t.Fatalf("no report of the guest's check %s", checkName(d, dev))
	}
	acked, err := strconv.Atoi(field(c, "acknowledged"))
	if err != nil || !c.OK {
		t.Errorf("guest check %s: %s", c.Name, c.Detail)
	}
	size, err := strconv.Atoi(field(c, "record_bytes"))
	if err != nil || size <= 0 {
		size = 4096
	}
	img := dump(t, fs, dir, d.file)
	if acked < 0 || acked*size > len(img) {
		t.Fatalf("guest check %s: %d acknowledged records of %d bytes do not fit the %d-byte image", c.Name, acked, size, len(img))
	}
	want := fill(d.seed, imageSize)
	var lost []int
	for i := 0; i < acked; i++ {
		r := img[i*size : (i+1)*size]
		if !bytes.Equal(r, want[i*size:(i+1)*size]) {
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("after the power cut, %d of the %d records the guest's flushes acknowledged are not in %s (through aio=%s): records %v",
			len(lost), acked, d.file, d.aio, lost)
	}
	t.Logf("all %d acknowledged records of %d bytes are in %s after the power cut", acked, size, d.file)
}

func field(c report.Check, key string) string {
	v, _ := c.Field(key)
	return v
}

func fill(seed uint64, n int) []byte {
	b := make([]byte, n)
	pattern.Fill(b, seed, 0)
	return b
}

// hostEnv returns the sandbox command; the other GOVMM_* variables the
// sandbox hands on to its command.
func hostEnv(t *testing.T) []string {
	t.Helper()
	for _, v := range []string{"GOVMM_BIN", "GOVMM_KERNEL", "GOVMM_INITRD", "GOVMM_SANDBOX_CMD"} {
		if os.Getenv(v) == "" {
			msg := v + " is not set: run this test with `make test` (or `make boot-test`) in the sandbox, which builds what it needs and passes it"
			if os.Getenv("GOVMM_REQUIRE_KVM") == "1" || os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return strings.Fields(os.Getenv("GOVMM_SANDBOX_CMD"))
}

// makeFileSystem builds the sandbox's disk: an ext2 file system (no
// journal, whose commits could write on their own) holding the images
// and the canary, each written whole so that an overwrite needs no new
// block and a flush has only the data to write.
func makeFileSystem(t *testing.T, dir string) string {
	t.Helper()
	stage := filepath.Join(dir, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, d := range disks {
		if err := os.WriteFile(filepath.Join(stage, d.file), fill(beforeSeed+uint64(i), imageSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, canaryFile), fill(canaryBefore, canarySize), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := filepath.Join(dir, "disk.ext2")
	cmd := exec.Command(tool(t, "mke2fs"), "-q", "-t", "ext2", "-b", "4096", "-d", stage, "-F", fs, "16M")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	return fs
}

// dump returns a file's bytes read from the file system image on the host.
func dump(t *testing.T, fs, dir, name string) []byte {
	t.Helper()
	out := filepath.Join(dir, "dump."+name)
	cmd := exec.Command(tool(t, "debugfs"), "-R", "dump /"+name+" "+out, fs)
	msg, err := cmd.CombinedOutput()
	b, rerr := os.ReadFile(out)
	if err != nil || rerr != nil {
		t.Fatalf("%v: %v, %v\n%s", cmd, err, rerr, msg)
	}
	return b
}

// tool finds an e2fsprogs command, which Debian installs in /sbin.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/sbin", "/usr/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("no %s: install e2fsprogs", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
