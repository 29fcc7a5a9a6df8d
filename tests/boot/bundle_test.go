package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// The tests of govmm run --bundle: the same bundle, whose process is
// tests/bundleprobe, under govmm and under runc.

// Exit statuses of govmm run --bundle besides the process's (govmm run --help).
const statusVMEnded = 124

// probeReport is bundleprobe's report, the fields the tests compare.
type probeReport struct {
	Args         []string          `json:"args"`
	Env          []string          `json:"env"`
	Cwd          string            `json:"cwd"`
	UID          int               `json:"uid"`
	GID          int               `json:"gid"`
	Groups       []int             `json:"groups"`
	Hostname     string            `json:"hostname"`
	Rlimits      map[string][2]int `json:"rlimits"`
	Umask        int               `json:"umask"`
	Mounts       map[string]string `json:"mounts"`
	RootWritable bool              `json:"root_writable"`
	NoNewPrivs   string            `json:"no_new_privs"`
}

// probeBundle writes an OCI bundle whose root file system holds only the
// probe and the files a user's image would: passwd, group, the mount
// points. Its config.json is what `runc spec` writes, made non-terminal,
// with the probe's arguments, a user, groups, an environment, a working
// directory, a hostname and a resource limit that the tests look for.
func probeBundle(t *testing.T, args ...string) string {
	t.Helper()
	probe := os.Getenv("GOVMM_BUNDLE_PROBE")
	if probe == "" {
		t.Fatal("GOVMM_BUNDLE_PROBE is not set: run the boot tests with make test, which builds bin/bundleprobe")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc", "srv/work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nprobe:x:1000:1000:probe:/srv/work:/bin/sh\n",
		"etc/group":    "root:x:0:\nwheel:x:10:probe\nprobe:x:1000:\naudio:x:29:probe\n",
		"etc/hostname": "image\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "probe"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := runcSpec()
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = append([]string{"/probe"}, args...)
	proc["env"] = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/srv/work", "GREETING=hello, two  spaces"}
	proc["cwd"] = "/srv/work"
	proc["user"] = map[string]any{"uid": 1000, "gid": 1000, "additionalGids": []int{10, 29}}
	proc["rlimits"] = []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}}
	spec["hostname"] = "probe-host"
	spec["root"] = map[string]any{"path": "rootfs", "readonly": false}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runcSpec is the config.json that runc 1.1's `runc spec` writes, less its
// capability lists (runc's defaults; the probe does not read them).
func runcSpec() map[string]any {
	var spec map[string]any
	if err := json.Unmarshal([]byte(runcSpecJSON), &spec); err != nil {
		panic(err)
	}
	return spec
}

const runcSpecJSON = `{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
		"env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
		"cwd": "/",
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
		"noNewPrivileges": true
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "runc",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
		{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	"linux": {
		"resources": {"devices": [{"allow": false, "access": "rwm"}]},
		"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
		"maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
		"readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
	}
}`

// containerRun is one run of a bundle's process.
type containerRun struct {
	status         int
	stdout, stderr string
	took           time.Duration
}

// runContainer runs the bundle under `govmm run --bundle` (runtime "govmm")
// or `runc run` and waits for it, feeding stdin.
func runContainer(t *testing.T, e env, runtime, bundle string, stdin io.Reader) containerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := containerCommand(t, ctx, e, runtime, bundle)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	start := time.Now()
	err := runOrDiagnose(t, ctx, cmd)
	r := containerRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: no exit after %v (%v)\nstderr:\n%s", runtime, bootTimeout, err, r.stderr)
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.status = exit.ExitCode()
	default:
		t.Fatalf("%s: %v\nstderr:\n%s", runtime, err, r.stderr)
	}
	t.Logf("%s: status %d after %v", runtime, r.status, r.took.Round(time.Millisecond))
	return r
}

func parseProbe(t *testing.T, runtime string, r containerRun) probeReport {
	t.Helper()
	var rep probeReport
	line, _, _ := strings.Cut(r.stdout, "\n")
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("%s: status %d, no probe report on stdout (%v)\nstdout:\n%.2000s\nstderr:\n%.4000s", runtime, r.status, err, r.stdout, r.stderr)
	}
	return rep
}

// treeDigest hashes every name, mode, size, modification time and byte of
// the tree: a bundle that a run modified hashes differently.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s %v %d %d\n", rel, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestBundleSeesWhatRuncShows runs the probe's report under runc and under
// govmm and compares them field by field; the bundle is the same byte for
// byte afterwards.
func TestBundleSeesWhatRuncShows(t *testing.T) {
	e := testEnv(t)
	bundle := probeBundle(t, "report", "with space", "ünïcode")
	before := treeDigest(t, bundle)
	vm := runContainer(t, e, "govmm", bundle, nil)
	got := parseProbe(t, "govmm", vm)
	if vm.status != 0 {
		t.Errorf("govmm: status %d, want the probe's 0\nstderr:\n%s", vm.status, vm.stderr)
	}
	if after := treeDigest(t, bundle); after != before {
		t.Errorf("the bundle changed under govmm run --bundle: digest %s before, %s after", before, after)
	}
	ct := runContainer(t, e, "runc", bundle, nil)
	want := parseProbe(t, "runc", ct)
	t.Logf("govmm: %+v", got)
	t.Logf("runc:  %+v", want)

	check := func(field string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: govmm %v, runc %v", field, g, w)
		}
	}
	check("args", got.Args, want.Args)
	sort.Strings(got.Env)
	sort.Strings(want.Env)
	check("env", got.Env, want.Env)
	check("cwd", got.Cwd, want.Cwd)
	check("uid", got.UID, want.UID)
	check("gid", got.GID, want.GID)
	check("groups", got.Groups, want.Groups)
	check("hostname", got.Hostname, want.Hostname)
	check("RLIMIT_NOFILE", got.Rlimits["RLIMIT_NOFILE"], want.Rlimits["RLIMIT_NOFILE"])
	check("umask", got.Umask, want.Umask)
	check("/ writable", got.RootWritable, want.RootWritable)
	check("NoNewPrivs", got.NoNewPrivs, want.NoNewPrivs)
	// Each of the spec's mounts, with the type runc gave it (cgroup v1 in
	// the spec is cgroup2 on a unified host, under both).
	for _, m := range runcSpec()["mounts"].([]any) {
		dest := m.(map[string]any)["destination"].(string)
		check("mount "+dest, got.Mounts[dest], want.Mounts[dest])
	}
	// And what a user reads off the report, whoever is right.
	check("args as given", got.Args, []string{"/probe", "report", "with space", "ünïcode"})
	check("uid as given", got.UID, 1000)
	check("hostname as given", got.Hostname, "probe-host")
	if vm.stderr != "" && !strings.Contains(vm.stderr, "govmm: bundle:") {
		t.Errorf("govmm wrote to stderr what is neither the process's nor a note on the spec:\n%s", vm.stderr)
	}
}

// TestBundleExitStatuses: govmm's status is the process's, as runc's is,
// and 128+N when signal N ended it. Under runc the process is PID 1 of its
// PID namespace, which no signal it sends itself can kill, so the signal
// cases run under govmm alone (where init is PID 1 and the process its
// child): the process killing itself, and SIGTERM sent to govmm reaching
// it.
func TestBundleExitStatuses(t *testing.T) {
	e := testEnv(t)
	bundle := probeBundle(t, "exit", "3")
	for _, rt := range []string{"govmm", "runc"} {
		if r := runContainer(t, e, rt, bundle, nil); r.status != 3 {
			t.Errorf("%s exit 3: status %d, want 3\nstderr:\n%s", rt, r.status, r.stderr)
		}
	}
	if r := runContainer(t, e, "govmm", probeBundle(t, "kill", "9"), nil); r.status != 128+9 {
		t.Errorf("govmm, process killed by SIGKILL: status %d, want %d\nstderr:\n%s", r.status, 128+9, r.stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	c := startGovmm(t, ctx, e, "--bundle", probeBundle(t, "wait"), "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M")
	if !c.lines.Scan() || c.lines.Text() != "waiting" {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		t.Fatalf("no \"waiting\" from the process: %q %v\nstderr:\n%s", c.lines.Text(), c.lines.Err(), c.stderr)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+15 {
		t.Errorf("SIGTERM to govmm: %v, want status %d (the process killed by the signal it was passed)\nstderr:\n%s", err, 128+15, c.stderr)
	}
}

// TestBundleStdio: 1 MiB on each of stdin, stdout and stderr crosses
// intact, stdout and stderr apart, and nothing of the guest kernel's or
// init's is mixed in.
func TestBundleStdio(t *testing.T) {
	e := testEnv(t)
	const n = 1 << 20
	const seed = 2026
	bundle := probeBundle(t, "stdio", fmt.Sprint(n), fmt.Sprint(seed))
	in := make([]byte, n)
	pattern.Fill(in, seed+7, 0)
	r := runContainer(t, e, "govmm", bundle, bytes.NewReader(in))
	if r.status != 0 {
		t.Fatalf("status %d, want 0\nstderr:\n%.4000s", r.status, r.stderr)
	}
	wantIn := sha256.Sum256(in)
	tailLine := fmt.Sprintf("stdin-sha256 %s\n", hex.EncodeToString(wantIn[:]))
	out, ok := strings.CutSuffix(r.stdout, tailLine)
	if !ok {
		t.Errorf("stdout does not end with %q: the process read other bytes than were sent (stdout ends %q)", tailLine, lastBytes(r.stdout, 120))
	}
	if len(out) != n || sha256.Sum256([]byte(out)) != pattern.SHA256(seed, n) {
		t.Errorf("stdout: %d bytes, want the %d-byte pattern %d", len(out), n, seed)
	}
	// govmm's own notes on the spec come first, before the VM starts.
	errOut := r.stderr
	for strings.HasPrefix(errOut, "govmm: bundle: ") {
		_, errOut, _ = strings.Cut(errOut, "\n")
	}
	if len(errOut) != n || sha256.Sum256([]byte(errOut)) != pattern.SHA256(seed+1, n) {
		t.Errorf("stderr: %d bytes, want the %d-byte pattern %d (starts %q)", len(errOut), n, seed+1, r.stderr[:min(len(r.stderr), 400)])
	}
}

func lastBytes(s string, n int) string { return s[max(0, len(s)-n):] }
