package bundle

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// tree is what an image of a root file system needs to know of it.
type tree struct {
	sum    hash.Hash // of every entry's metadata
	inodes uint64    // distinct inodes
	blocks uint64    // their bytes, in whole 4 KiB blocks
}

// scanTree walks root without following links.
//
// The image's cache key is the metadata of every entry, not the files'
// contents: reading every byte of a Debian tree at each start costs
// seconds, and a file's contents cannot change without its ctime
// changing, which no user can set back (mtime can be, by tar or touch);
// a file replaced by another (rename, link) has its ctime moved too. The
// inode number is left out: a view of the tree that remaps inodes (9p,
// some network file systems) would miss the cache at every start.
func scanTree(root string) (tree, error) {
	t := tree{sum: sha256.New()}
	seen := map[uint64]bool{} // inodes with more than one link
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		t.add(rel, target, st)
		if st.Nlink > 1 && fi.Mode().IsRegular() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		t.inodes++
		t.blocks += (uint64(st.Size) + 4095) / 4096 * 4096
		return nil
	})
	return t, err
}

// add hashes one entry: its path, the link's target, then the numbers.
func (t *tree) add(rel, target string, st *syscall.Stat_t) {
	writeString(t.sum, rel)
	writeString(t.sum, target)
	var b [8 * 8]byte
	for i, v := range []uint64{
		uint64(st.Mode), uint64(st.Uid), uint64(st.Gid), uint64(st.Size),
		uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano()), st.Rdev, st.Nlink,
	} {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	t.sum.Write(b[:])
}

// writeString writes s with its length, so that no two lists of strings
// hash alike.
func writeString(h hash.Hash, s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// key is the image's cache key: the tree and the mke2fs arguments that
// make its image. It ends the hash: call it once.
func (t *tree) key(args []string) []byte {
	h := t.sum
	for _, a := range args {
		writeString(h, a)
	}
	return h.Sum(nil)
}
