package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fixture is a bundle in a temporary directory: a small root file system
// (a merged /usr as Debian has it, an executable /usr/bin/sh, root in
// /etc/passwd and /etc/group) and a spec that Load accepts without a line
// of Unsupported.
type fixture struct {
	t    testing.TB
	dir  string
	root string
	spec *specs.Spec
	// raw, when set, is written as config.json instead of spec;
	// noConfig writes none.
	raw      string
	noConfig bool
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, root: filepath.Join(dir, "rootfs")}
	f.file("usr/bin/sh", 0o755, "#!shell\n")
	f.link("bin", "usr/bin")
	f.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n# a comment\nnobody:x:65534:65534:nobody:/:/bin/false\n")
	f.file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n")
	f.spec = &specs.Spec{
		Version: "1.0.2",
		Process: &specs.Process{
			Args: []string{"sh", "-c", "true"},
			Env:  []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			Cwd:  "/",
		},
		Root:  &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}},
	}
	return f
}

// file writes name (a path in the root file system) with mode.
func (f *fixture) file(name string, mode os.FileMode, data string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		f.t.Fatal(err)
	}
}

// link makes name in the root file system a symbolic link to target.
func (f *fixture) link(name, target string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) remove(name string) {
	f.t.Helper()
	if err := os.Remove(filepath.Join(f.root, name)); err != nil {
		f.t.Fatal(err)
	}
}

// writeConfig writes the spec (or raw) as config.json.
func (f *fixture) writeConfig() {
	f.t.Helper()
	switch {
	case f.noConfig:
		return
	case f.raw != "":
		f.writeRaw(f.raw)
		return
	}
	data, err := json.MarshalIndent(f.spec, "", "\t")
	if err != nil {
		f.t.Fatal(err)
	}
	f.writeRaw(string(data))
}

func (f *fixture) writeRaw(config string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "config.json"), []byte(config), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// load writes config.json and loads the bundle.
func (f *fixture) load() (*Bundle, error) {
	f.t.Helper()
	f.writeConfig()
	return Load(f.dir)
}

// mustLoad is load for a bundle that must be good.
func (f *fixture) mustLoad() *Bundle {
	f.t.Helper()
	b, err := f.load()
	if err != nil {
		f.t.Fatalf("Load: %v", err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }
