package bundle

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/govmm/govmm/guest/agent"
)

// maxSymlinks is how many symbolic links one lookup follows before it
// fails with ELOOP, as Linux's path walk (MAXSYMLINKS).
const maxSymlinks = 40

// resolveIn finds name (a path in the container) on the host as the guest
// kernel will find it once root is its "/": symbolic links are followed,
// an absolute target starts again at root, and ".." stops at root. The
// answer is always root or a path under it: a link in an image can never
// make govmm look at the host's own files.
//
// The tree belongs to the user who runs govmm and the answer only decides
// a check (the guest resolves the path again in its own root), so a tree
// changed during the walk can only change the check's answer.
func resolveIn(root, name string) (string, error) {
	var dir []string // the components resolved so far, none a link
	todo := strings.Split(name, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(dir) > 0 {
				dir = dir[:len(dir)-1]
			}
			continue
		}
		host := filepath.Join(root, filepath.Join(dir...), c)
		fi, err := os.Lstat(host)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", &fs.PathError{Op: "lookup", Path: host, Err: syscall.ENOTDIR}
			}
			dir = append(dir, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", &fs.PathError{Op: "lookup", Path: host, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			dir = nil
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Join(root, filepath.Join(dir...)), nil
}

// DefaultPath is the PATH searched for process.args[0] when process.env
// sets none, the guest's too.
const DefaultPath = agent.DefaultPath

// envPath is PATH in env; the last one wins, as Go's os/exec and a shell
// that reads the list in order keep it.
func envPath(env []string) string {
	p := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	return p
}
