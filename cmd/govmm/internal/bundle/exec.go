package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkProcess checks what the guest would otherwise fail on after a boot.
func checkProcess(root string, p *specs.Process) error {
	switch {
	case p == nil:
		return errors.New(`config.json has no process: add "process" with "args", "cwd" and "user" (` + "`runc spec`" + ` writes one)`)
	case len(p.Args) == 0 || p.Args[0] == "":
		return errors.New(`process.args is empty: name the program to run and its arguments, e.g. ["sh"]`)
	case !path.IsAbs(p.Cwd):
		return fmt.Errorf(`process.cwd %q is not an absolute path: give the working directory's path in the container, e.g. "/"`, p.Cwd)
	}
	if err := findExecutable(root, p); err != nil {
		return err
	}
	return checkUser(root, p.User)
}

// findExecutable finds args[0] in the root file system as execvp would in
// the guest: a name with a slash is a path (from cwd when relative), any
// other is searched along the process's PATH.
func findExecutable(root string, p *specs.Process) error {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if _, err := executable(root, inContainer(p.Cwd, name)); err != nil {
			return fmt.Errorf("process.args[0] %q: %w", name, err)
		}
		return nil
	}
	search := envPath(p.Env)
	var first error // execvp reports a file it found but cannot run
	for _, dir := range filepath.SplitList(search) {
		// An empty or relative entry is from the working directory.
		_, err := executable(root, path.Join(inContainer(p.Cwd, dir), name))
		if err == nil {
			return nil
		}
		if first == nil && !errors.Is(err, errMissing) {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("process.args[0] %q: %w", name, first)
	}
	return fmt.Errorf("process.args[0] %q is not in the root file system's PATH (%s): install it in the image or give its absolute path", name, search)
}

// errMissing is executable's error for a path that does not exist.
var errMissing = errors.New("does not exist in the root file system")

// executable resolves name in root and checks that it is a regular file
// with an execute bit.
func executable(root, name string) (string, error) {
	host, err := resolveIn(root, name)
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s %w", name, errMissing)
	case errors.As(err, &pe):
		// The host's path of the component would only confuse.
		return "", fmt.Errorf("%s in the root file system: %w", name, pe.Err)
	case err != nil:
		return "", fmt.Errorf("%s in the root file system: %w", name, err)
	}
	fi, err := os.Lstat(host) // resolveIn followed every link
	switch {
	case err != nil:
		return "", err
	case fi.IsDir():
		return "", fmt.Errorf("%s in the root file system is a directory: name the program itself", name)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s in the root file system is not a regular file (%v): name the program itself", name, fi.Mode().Type())
	case fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s in the root file system is not executable (mode %v): chmod +x it", name, fi.Mode().Perm())
	}
	return host, nil
}

// inContainer is name's absolute path in the container, from cwd when
// name is relative.
func inContainer(cwd, name string) string {
	if path.IsAbs(name) {
		return name
	}
	return path.Join(cwd, name)
}
