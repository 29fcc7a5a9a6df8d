package bundle

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestGoodBundle(t *testing.T) {
	f := newFixture(t)
	b := f.mustLoad()
	if b.Dir != f.dir || b.Root != f.root {
		t.Errorf("Dir, Root = %q, %q; want %q, %q", b.Dir, b.Root, f.dir, f.root)
	}
	if len(b.Unsupported) != 0 {
		t.Errorf("Unsupported = %q, want none", b.Unsupported)
	}
}

// Each bad bundle fails with an ErrBadBundle whose message names the
// bundle, the problem and the fix.
func TestBadBundles(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(f *fixture) string // returns the directory to load, "" for f.dir
		want  []string
	}{
		{"missing dir", func(f *fixture) string { return filepath.Join(f.dir, "nope") }, []string{"nope", "no such directory", "config.json"}},
		{"dir is a file", func(f *fixture) string { return filepath.Join(f.root, "etc/passwd") }, []string{"not a directory", "not a file"}},
		{"no config.json", func(f *fixture) string { f.noConfig = true; return "" }, []string{"no config.json", "runc spec"}},
		{"invalid JSON", func(f *fixture) string {
			f.raw = "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}\n"
			return ""
		}, []string{"line 3, column 15", "invalid character ','", "fix the JSON"}},
		{"wrong JSON type", func(f *fixture) string {
			f.raw = "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": 5}\n}\n"
			return ""
		}, []string{"line 3", "process.args", "number"}},
		{"version 2", func(f *fixture) string { f.spec.Version = "2.0.0"; return "" }, []string{`ociVersion "2.0.0"`, "1.0.0 through 1.3.x"}},
		{"version 1.4", func(f *fixture) string { f.spec.Version = "1.4.0"; return "" }, []string{`ociVersion "1.4.0"`, "1.0.0 through 1.3.x"}},
		{"version 0.x", func(f *fixture) string { f.spec.Version = "0.6.0"; return "" }, []string{`ociVersion "0.6.0"`}},
		{"no version", func(f *fixture) string { f.spec.Version = ""; return "" }, []string{"no ociVersion", "1.0.0 through 1.3.x"}},
		{"no root", func(f *fixture) string { f.spec.Root = nil; return "" }, []string{"no root.path", `"path": "rootfs"`}},
		{"root missing", func(f *fixture) string { f.spec.Root.Path = "gone"; return "" }, []string{`root.path "gone"`, "does not exist", "unpack"}},
		{"root is a file", func(f *fixture) string { f.spec.Root.Path = "rootfs/etc/passwd"; return "" }, []string{"is not a directory", "not an image file"}},
		{"no process", func(f *fixture) string { f.spec.Process = nil; return "" }, []string{"no process", `"args"`}},
		{"empty args", func(f *fixture) string { f.spec.Process.Args = nil; return "" }, []string{"process.args is empty"}},
		{"not on PATH", func(f *fixture) string { f.spec.Process.Args = []string{"bash"}; return "" }, []string{`process.args[0] "bash"`, "PATH (/usr/local/bin:/usr/bin:/bin)", "install it"}},
		{"default PATH", func(f *fixture) string { f.spec.Process.Env = nil; f.spec.Process.Args = []string{"bash"}; return "" }, []string{"PATH (" + DefaultPath + ")"}},
		{"absolute missing", func(f *fixture) string { f.spec.Process.Args = []string{"/opt/app"}; return "" }, []string{`process.args[0] "/opt/app"`, "/opt/app does not exist in the root file system"}},
		{"not executable", func(f *fixture) string { f.file("usr/bin/sh", 0o644, ""); return "" }, []string{`process.args[0] "sh"`, "/usr/bin/sh", "not executable", "chmod +x"}},
		{"a directory", func(f *fixture) string { f.spec.Process.Args = []string{"/etc"}; return "" }, []string{"/etc", "is a directory"}},
		{"through a file", func(f *fixture) string { f.spec.Process.Args = []string{"/etc/passwd/sh"}; return "" }, []string{"/etc/passwd/sh in the root file system: not a directory"}},
		{"a fifo", func(f *fixture) string {
			if err := syscall.Mkfifo(filepath.Join(f.root, "fifo"), 0o755); err != nil {
				t.Fatal(err)
			}
			f.spec.Process.Args = []string{"/fifo"}
			return ""
		}, []string{"/fifo in the root file system is not a regular file"}},
		{"relative path", func(f *fixture) string {
			f.spec.Process.Cwd = "/app"
			f.spec.Process.Args = []string{"./run"}
			return ""
		}, []string{`"./run": /app/run does not exist`}},
		{"link loop", func(f *fixture) string { f.link("loop", "loop"); f.spec.Process.Args = []string{"/loop"}; return "" }, []string{"too many levels of symbolic links"}},
		{"relative cwd", func(f *fixture) string { f.spec.Process.Cwd = "app"; return "" }, []string{`process.cwd "app"`, "absolute"}},
		{"no cwd", func(f *fixture) string { f.spec.Process.Cwd = ""; return "" }, []string{`process.cwd ""`, "absolute"}},
		{"uid not in passwd", func(f *fixture) string { f.spec.Process.User.UID = 1000; return "" }, []string{"process.user.uid 1000", "/etc/passwd"}},
		{"gid not in group", func(f *fixture) string { f.spec.Process.User.GID = 1000; return "" }, []string{"process.user.gid 1000", "/etc/group"}},
		{"username", func(f *fixture) string { f.spec.Process.User.Username = "bob"; return "" }, []string{`process.user.username "bob"`, "Windows"}},
		{"bad cpuset", func(f *fixture) string {
			f.spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-x"}}
			return ""
		}, []string{`linux.resources.cpu.cpus "0-x"`, `"0-3,6"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			dir := c.setup(f)
			if dir == "" {
				dir = f.dir
			}
			f.writeConfig()
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			if !errors.Is(err, ErrBadBundle) {
				t.Errorf("%v: not an ErrBadBundle", err)
			}
			for _, w := range append(c.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A bundle given by a relative path, with a relative root.path, is found
// from the working directory and its root from the bundle.
func TestRelativePaths(t *testing.T) {
	f := newFixture(t)
	f.writeConfig()
	t.Chdir(filepath.Dir(f.dir))
	b, err := Load(filepath.Base(f.dir))
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != f.dir || b.Root != f.root {
		t.Errorf("Dir, Root = %q, %q; want %q, %q", b.Dir, b.Root, f.dir, f.root)
	}
}

func TestAcceptedVersions(t *testing.T) {
	for _, v := range []string{"1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.7+build"} {
		if err := checkVersion(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

// Without /etc/passwd and /etc/group any uid and gid go, as a static
// binary's image has neither.
func TestNoUserDatabase(t *testing.T) {
	f := newFixture(t)
	f.remove("etc/passwd")
	f.remove("etc/group")
	f.spec.Process.User = specs.User{UID: 1234, GID: 1234}
	f.mustLoad()
}

func TestUserFound(t *testing.T) {
	f := newFixture(t)
	f.spec.Process.User = specs.User{UID: 65534, GID: 65534}
	f.mustLoad()
}
