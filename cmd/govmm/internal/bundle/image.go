package bundle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RootImage returns a read-only ext4 image of the bundle's root file
// system, built with e2fsprogs' `mke2fs -t ext4 -d ROOT` (needs no root)
// into cacheDir (create it) and reused while the tree is unchanged.
func (b *Bundle) RootImage(cacheDir string) (string, error) {
	mke2fs, err := findMke2fs()
	if err != nil {
		return "", err
	}
	t, err := scanTree(b.Root)
	if err != nil {
		return "", fmt.Errorf("read the root file system %s: %w", b.Root, err)
	}
	opts, size := mke2fsArgs(b.Root, t)
	image := filepath.Join(cacheDir, "rootfs-"+hex.EncodeToString(t.key(slices.Concat(opts, []string{size}))[:16])+".ext4")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("root file system image: %w", err)
	}
	now := time.Now()
	if _, err := os.Stat(image); err == nil {
		// The modification time says when the image was last used, for
		// prune; atime is not kept on relatime or noatime mounts. A cache
		// shared with another user may refuse; the image still serves.
		os.Chtimes(image, now, now) //nolint:errcheck // see above
		return image, nil
	}
	prune(cacheDir, now)
	if err := build(mke2fs, opts, size, image); err != nil {
		return "", err
	}
	return image, nil
}

// findMke2fs finds mke2fs where Debian puts it (/sbin is not on a user's
// PATH there), else on PATH.
func findMke2fs() (string, error) {
	if fi, err := os.Stat("/sbin/mke2fs"); err == nil && fi.Mode().IsRegular() {
		return "/sbin/mke2fs", nil
	}
	p, err := exec.LookPath("mke2fs")
	if err != nil {
		return "", errors.New("mke2fs not found: govmm builds the bundle's root file system image with it; install e2fsprogs (apt-get install e2fsprogs)")
	}
	return p, nil
}

const kib = 1 << 10

// mke2fsArgs are mke2fs's options and the image's size for tree t of
// root; the image file goes between them. No journal: the image is
// read-only in the guest. No metadata checksums: they guard media the
// image does not live on long, and computing them is most of mke2fs's
// own time (a 50,000-file tree: 33 s with, 18 s without). root_owner: the tree's top directory may belong
// to the user who unpacked it, the guest's / belongs to root. 4 KiB
// blocks, which imageSize counts in.
func mke2fsArgs(root string, t tree) (opts []string, size string) {
	opts = []string{"-q", "-t", "ext4", "-b", "4096", "-L", "govmm-bundle", "-O", "^has_journal,^metadata_csum",
		"-m", "0", "-N", strconv.FormatUint(t.inodes+reservedInodes, 10),
		"-E", "root_owner=0:0", "-d", root}
	return opts, strconv.FormatUint(imageSize(t)/kib, 10) + "k"
}

// reservedInodes covers ext4's first inodes (EXT4_GOOD_OLD_FIRST_INO is
// 11) and lost+found, which the tree does not have.
const reservedInodes = 16

// imageSize is room for t: each file's bytes in whole 4 KiB blocks, 256
// bytes of inode table per inode, then 20% and 16 MiB for the file
// system's own metadata (bitmaps, group descriptors, extent blocks).
func imageSize(t tree) uint64 {
	n := t.blocks + t.inodes*256
	n += n/5 + 16*mib
	return (n + 4*kib - 1) / (4 * kib) * (4 * kib)
}

// build makes image with mke2fs in a file of its own and renames it into
// place: a reader sees no image or a whole one, and two govmm starting
// the same bundle at once each build one and the last rename wins.
func build(mke2fs string, opts []string, size, image string) error {
	f, err := os.CreateTemp(filepath.Dir(image), buildPrefix+"*.ext4")
	if err != nil {
		return fmt.Errorf("root file system image: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Close(); err != nil {
		return fmt.Errorf("root file system image: %w", err)
	}
	args := slices.Concat(opts, []string{"-F", tmp, size})
	out, err := exec.Command(mke2fs, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the root file system image: %s %s: %v: %s", mke2fs, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return fmt.Errorf("root file system image: %w", err)
	}
	if err := os.Rename(tmp, image); err != nil {
		return fmt.Errorf("root file system image: %w", err)
	}
	return nil
}

const (
	buildPrefix = ".build-"
	// unusedFor is how long an image may go unused before a build deletes
	// it.
	unusedFor = 7 * 24 * time.Hour
	// abandonedFor is how old an unfinished build is when its govmm died:
	// longer than any build takes.
	abandonedFor = 24 * time.Hour
)

// prune deletes images unused for a week and builds abandoned for a day.
// An image another user owns is left: the cache is still usable, and its
// owner's next build prunes it.
func prune(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		var age time.Duration
		switch {
		case strings.HasPrefix(name, "rootfs-") && strings.HasSuffix(name, ".ext4"):
			age = unusedFor
		case strings.HasPrefix(name, buildPrefix):
			age = abandonedFor
		default:
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > age && fi.Mode().IsRegular() {
			os.Remove(filepath.Join(dir, name)) //nolint:errcheck // see above
		}
	}
}
