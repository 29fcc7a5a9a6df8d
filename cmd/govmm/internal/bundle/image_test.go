package bundle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needE2fsprogs skips, saying why, where e2fsprogs is not installed.
func needE2fsprogs(t *testing.T) string {
	t.Helper()
	if _, err := findMke2fs(); err != nil {
		t.Skip(err)
	}
	p, err := exec.LookPath("debugfs")
	if err != nil {
		if p, err = exec.LookPath("/sbin/debugfs"); err != nil {
			t.Skip("debugfs not found: apt-get install e2fsprogs")
		}
	}
	return p
}

// debugfs runs a debugfs request on image and returns what it printed.
func debugfs(t *testing.T, bin, image, request string) string {
	t.Helper()
	out, err := exec.Command(bin, "-R", request, image).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -R %q %s: %v\n%s", request, image, err, out)
	}
	return string(out)
}

func TestRootImage(t *testing.T) {
	dbg := needE2fsprogs(t)
	f := newFixture(t)
	f.file("srv/motd", 0o644, "hello\n")
	b := f.mustLoad()
	cache := filepath.Join(t.TempDir(), "a", "cache") // RootImage creates it

	image, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	ls := debugfs(t, dbg, image, "ls -l /")
	for _, name := range []string{"usr", "bin", "etc", "srv"} {
		if !strings.Contains(ls, " "+name+"\n") && !strings.HasSuffix(strings.TrimSpace(ls), " "+name) {
			t.Errorf("ls -l / of the image does not list %s:\n%s", name, ls)
		}
	}
	if got := debugfs(t, dbg, image, "cat /srv/motd"); !strings.Contains(got, "hello") {
		t.Errorf("/srv/motd in the image = %q", got)
	}
	if got := debugfs(t, dbg, image, "stat /bin"); !strings.Contains(got, "Type: symlink") || !strings.Contains(got, `Fast link dest: "usr/bin"`) {
		t.Errorf("/bin in the image is not the link to usr/bin:\n%s", got)
	}
	first, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}

	again, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	if again != image {
		t.Errorf("second RootImage = %s, want the first's %s", again, image)
	}
	if fi, err := os.Stat(again); err != nil || !os.SameFile(fi, first) {
		t.Errorf("the unchanged tree's image was rebuilt (%v)", err)
	}

	f.file("srv/motd", 0o644, "changed\n")
	changed, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed == image {
		t.Fatalf("a changed tree's image is the old one, %s", image)
	}
	if got := debugfs(t, dbg, changed, "cat /srv/motd"); !strings.Contains(got, "changed") {
		t.Errorf("/srv/motd in the rebuilt image = %q", got)
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), buildPrefix) {
			t.Errorf("a build's temporary file is left: %s", e.Name())
		}
	}
}

// Files keep their owners in the image and the root directory is root's.
func TestRootImageOwners(t *testing.T) {
	dbg := needE2fsprogs(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	f := newFixture(t)
	f.file("home/user/notes", 0o600, "x")
	if err := os.Chown(filepath.Join(f.root, "home/user/notes"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f.root, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	image, err := f.mustLoad().RootImage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := debugfs(t, dbg, image, "stat /home/user/notes"); !strings.Contains(got, "User:  1000   Group:  1001") {
		t.Errorf("notes' owner is not kept:\n%s", got)
	}
	if got := debugfs(t, dbg, image, "stat /"); !strings.Contains(got, "User:     0   Group:     0") {
		t.Errorf("/ is not root's:\n%s", got)
	}
}

// A build deletes images unused for a week and abandoned builds, and
// keeps the rest.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{
		"rootfs-old.ext4":    8 * 24 * time.Hour,
		"rootfs-recent.ext4": 6 * 24 * time.Hour,
		".build-dead.ext4":   25 * time.Hour,
		".build-live.ext4":   time.Minute,
		"other-file":         30 * 24 * time.Hour,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	prune(dir, now)
	var left []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if got, want := strings.Join(left, " "), ".build-live.ext4 other-file rootfs-recent.ext4"; got != want {
		t.Errorf("after prune: %s, want %s", got, want)
	}
}

// A reused image counts as used: prune measures from its last use.
func TestReuseMarksUse(t *testing.T) {
	needE2fsprogs(t)
	f := newFixture(t)
	b := f.mustLoad()
	cache := t.TempDir()
	image, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(image, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RootImage(cache); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(image); err != nil || time.Since(fi.ModTime()) > time.Hour {
		t.Errorf("reusing the image did not mark it used: %v", err)
	}
}

func TestImageSize(t *testing.T) {
	// 1000 inodes of one block each: 4000 KiB + 250 KiB, +20%, +16 MiB.
	got := imageSize(tree{inodes: 1000, blocks: 1000 * 4096})
	want := uint64((1000*4096+1000*256)*12/10 + 16<<20)
	want = (want + 4095) / 4096 * 4096
	if got != want {
		t.Errorf("imageSize = %d, want %d", got, want)
	}
}

// A root.path that is a link to the tree images the tree, and a change
// in the tree makes a new image.
func TestRootImageThroughLink(t *testing.T) {
	dbg := needE2fsprogs(t)
	f := newFixture(t)
	if err := os.Symlink("rootfs", filepath.Join(f.dir, "current")); err != nil {
		t.Fatal(err)
	}
	f.spec.Root.Path = "current"
	b := f.mustLoad()
	cache := t.TempDir()
	image, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	f.file("srv/new", 0o644, "new\n")
	changed, err := b.RootImage(cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed == image {
		t.Fatal("a change in the tree behind root.path's link did not make a new image")
	}
	if got := debugfs(t, dbg, changed, "cat /srv/new"); !strings.Contains(got, "new") {
		t.Errorf("/srv/new in the image = %q", got)
	}
}
