package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mirror runs tests/debian-mirror.sh on apt source files with the given
// names and contents, in that order, and returns what it printed on
// stdout and whether it succeeded.
func mirror(t *testing.T, env []string, files ...[2]string) (string, string, bool) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	for _, f := range files {
		p := filepath.Join(dir, f[0])
		if err := os.WriteFile(p, []byte(f[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command("../debian-mirror.sh", args...)
	cmd.Env = append(withoutEnv("GOVMM_DEBIAN_MIRROR"), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), stderr.String(), err == nil
}

// withoutEnv is this process's environment without the named variables.
func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// Debian's own layout since bookworm: deb822 stanzas, comments between the
// fields, security first here.
const debianSources = `Types: deb
# http://snapshot.example/archive/debian-security/20250520T000000Z
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# a comment between fields
URIs: http://192.0.2.10:3142/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

func TestMirrorIsTheURIThatServesBookwormMain(t *testing.T) {
	for _, c := range []struct {
		name  string
		files [][2]string
		want  string
	}{
		{"deb822, local proxy", [][2]string{{"debian.sources", debianSources}}, "http://192.0.2.10:3142/debian"},
		{"one-line, options with spaces, after deb-src, security and other suites", [][2]string{{"sources.list", `
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://archive.example/debian-security bookworm-security main
deb http://archive.example/debian trixie main
deb http://archive.example/debian bookworm contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.lan.example/debian bookworm main non-free # ours
`}}, "http://mirror.lan.example/debian"},
		{"one-line, local file mirror", [][2]string{{"sources.list", "deb [trusted=yes] file:/srv/mirror/debian bookworm main\n"}}, "file:/srv/mirror/debian"},
		{"deb822, disabled stanza and continuation lines", [][2]string{{"local.sources", `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src deb
URIs:
 http://mirror.lan.example/debian
Suites: bookworm
Components: main
`}}, "http://mirror.lan.example/debian"},
		{"first file serves none, second does", [][2]string{
			{"sources.list", "deb http://archive.example/debian-security bookworm-security main\n"},
			{"debian.sources", debianSources},
		}, "http://192.0.2.10:3142/debian"},
	} {
		got, stderr, ok := mirror(t, nil, c.files...)
		if !ok || got != c.want {
			t.Errorf("%s: printed %q (ok %v), want %q\n%s", c.name, got, ok, c.want, stderr)
		}
	}
}

func TestMirrorFailsWithTheFixWhenNoSourceServesBookworm(t *testing.T) {
	got, stderr, ok := mirror(t, nil,
		[2]string{"sources.list", "deb http://archive.example/debian trixie main\n"},
		[2]string{"x.sources", "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm\nComponents: contrib\n"})
	if ok || got != "" {
		t.Errorf("printed %q (ok %v), want a failure", got, ok)
	}
	if !strings.Contains(stderr, "GOVMM_DEBIAN_MIRROR") {
		t.Errorf("the error does not name the way out: %q", stderr)
	}
}

func TestMirrorCanBeNamed(t *testing.T) {
	got, _, ok := mirror(t, []string{"GOVMM_DEBIAN_MIRROR=http://named.example/debian"},
		[2]string{"debian.sources", debianSources})
	if !ok || got != "http://named.example/debian" {
		t.Errorf("printed %q (ok %v), want the named mirror", got, ok)
	}
}

// TestFetchGoUsesTheGoOnPathOnlyIfItCanSwitchToolchains runs
// tests/fetch-go.sh with a stand-in go on PATH reporting a version. Go 1.21
// and later are used as they are; older ones are not, and the script goes
// to bookworm-backports instead, here a mirror that does not exist, so
// that it fails saying what it looked for.
func TestFetchGoUsesTheGoOnPathOnlyIfItCanSwitchToolchains(t *testing.T) {
	for _, c := range []struct {
		version string
		used    bool
	}{
		{"go1.26.8", true}, {"go1.21.0", true}, {"go1.23", true}, {"go1.100.1", true},
		{"go1.20.14", false}, {"go1.19.8", false}, {"go1.9.7", false}, {"go1.2", false},
	} {
		dir := t.TempDir()
		gobin := filepath.Join(dir, "bin")
		if err := os.Mkdir(gobin, 0o755); err != nil {
			t.Fatal(err)
		}
		fake := "#!/bin/sh\n[ \"$*\" = 'env GOVERSION' ] && echo " + c.version + "\n"
		if err := os.WriteFile(filepath.Join(gobin, "go"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("../fetch-go.sh")
		cmd.Env = append(withoutEnv("PATH", "GOVMM_CACHE", "GOVMM_DEBIAN_MIRROR"),
			"PATH="+gobin+":/usr/sbin:/usr/bin:/sbin:/bin", "GOVMM_CACHE="+filepath.Join(dir, "cache"),
			"GOVMM_DEBIAN_MIRROR=file:"+filepath.Join(dir, "no-mirror"))
		status, out := runCmd(t, cmd, time.Minute)
		out = strings.TrimSpace(out)
		if c.used && (status != 0 || out != filepath.Join(gobin, "go")) {
			t.Errorf("%s on PATH: status %d, printed %q, want its path", c.version, status, out)
		}
		if !c.used && (status == 0 || !strings.Contains(out, "cannot find golang-1.23-go")) {
			t.Errorf("%s on PATH: status %d, printed %q, want a failed look in bookworm-backports", c.version, status, out)
		}
	}
}
