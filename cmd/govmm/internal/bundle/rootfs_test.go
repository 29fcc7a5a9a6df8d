package bundle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A link that points out of the root file system, relative or absolute,
// is followed inside it: the host's file of that name is never found.
func TestSymlinkEscapeStaysInRoot(t *testing.T) {
	f := newFixture(t)
	// The bait: an executable on the host, beside the root file system.
	outside := filepath.Join(f.dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "prog"), []byte("#!host\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.link("usr/bin/up", "../../../outside/prog")
	f.link("usr/bin/abs", filepath.Join(outside, "prog"))
	f.link("usr/bin/dotdot", "/../../../../../"+filepath.Join(outside, "prog"))
	for _, name := range []string{"up", "abs", "dotdot", "/usr/bin/up", "/bin/abs"} {
		t.Run(name, func(t *testing.T) {
			f.spec.Process.Args = []string{name}
			_, err := f.load()
			if err == nil {
				t.Fatalf("Load found %s: it followed a link to the host's %s", name, outside)
			}
			if !strings.Contains(err.Error(), "not in the root file system's PATH") && !strings.Contains(err.Error(), "does not exist in the root file system") {
				t.Errorf("error %q does not say the program is missing", err)
			}
		})
	}
	// The same paths inside the root file system are found.
	f.file("outside/prog", 0o755, "#!guest\n")
	f.file(filepath.Join(outside, "prog"), 0o755, "#!guest\n")
	for _, name := range []string{"up", "abs", "dotdot"} {
		f.spec.Process.Args = []string{name}
		if _, err := f.load(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestResolveIn(t *testing.T) {
	f := newFixture(t)
	f.link("usr/bin/busybox-link", "/bin/sh")
	f.link("etc/alternatives/x", "../../usr/bin/busybox-link")
	f.link("escape", "../../../..")
	for _, c := range []struct{ name, want string }{
		{"/bin/sh", "usr/bin/sh"},
		{"bin/sh", "usr/bin/sh"},
		{"/etc/alternatives/x", "usr/bin/sh"},
		{"/../../bin/sh", "usr/bin/sh"},
		{"/escape/bin/sh", "usr/bin/sh"},
		{"/escape", ""},
		{"/usr/bin/../../etc/./passwd", "etc/passwd"},
	} {
		got, err := resolveIn(f.root, c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if want := filepath.Join(f.root, c.want); got != want {
			t.Errorf("%s resolves to %s, want %s", c.name, got, want)
		}
	}
	if _, err := resolveIn(f.root, "/nothing/here"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/nothing/here: %v, want not found", err)
	}
}

// The executable is looked up as execvp does in the guest: along PATH
// (the last PATH= of env, else the default), relative entries from cwd.
func TestFindExecutable(t *testing.T) {
	f := newFixture(t)
	f.file("usr/local/sbin/daemon", 0o700, "")
	f.file("app/bin/tool", 0o755, "")
	f.file("usr/bin/nox", 0o644, "")
	f.file("sbin/nox", 0o755, "")
	for _, c := range []struct {
		args0, cwd string
		env        []string
	}{
		{"sh", "/", nil},
		{"daemon", "/", nil},
		{"tool", "/app", []string{"PATH=/usr/bin", "PATH=bin:/usr/bin"}},
		{"./bin/tool", "/app", nil},
		{"../app/bin/tool", "/usr", nil},
		{"nox", "/", []string{"PATH=/usr/bin:/sbin"}}, // skips a file it cannot run
	} {
		f.spec.Process.Args, f.spec.Process.Cwd, f.spec.Process.Env = []string{c.args0}, c.cwd, c.env
		if _, err := f.load(); err != nil {
			t.Errorf("%s from %s with %q: %v", c.args0, c.cwd, c.env, err)
		}
	}
	f.spec.Process.Args, f.spec.Process.Cwd, f.spec.Process.Env = []string{"nox"}, "/", []string{"PATH=/usr/bin"}
	if _, err := f.load(); err == nil || !strings.Contains(err.Error(), "/usr/bin/nox in the root file system is not executable") {
		t.Errorf("nox on PATH=/usr/bin: %v, want not executable", err)
	}
}
