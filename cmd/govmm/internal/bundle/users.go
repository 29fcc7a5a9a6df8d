package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkUser checks that the process's uid and gid name a user and a group
// of the image. An image without /etc/passwd (or /etc/group) passes: a
// static binary's image (scratch, distroless) often has none, the kernel
// needs no user database to run as a number, and runc runs such images.
func checkUser(root string, u specs.User) error {
	if u.Username != "" {
		return fmt.Errorf("process.user.username %q is for Windows containers: remove it and give process.user.uid and gid", u.Username)
	}
	ids := []struct {
		file, field string
		id          uint32
		fix         string
	}{
		{"/etc/passwd", "uid", u.UID, "add the user to the image or use a uid it has"},
		{"/etc/group", "gid", u.GID, "add the group to the image or use a gid it has"},
	}
	for _, c := range ids {
		found, err := hasID(root, c.file, c.id)
		if err != nil {
			return fmt.Errorf("process.user.%s: %w", c.field, err)
		}
		if !found {
			return fmt.Errorf("process.user.%s %d is not in the root file system's %s: %s", c.field, c.id, c.file, c.fix)
		}
	}
	return nil
}

// hasID says whether a passwd or group file in root has an entry whose
// third field is id; a file that does not exist has every id.
func hasID(root, file string, id uint32) (bool, error) {
	host, err := resolveIn(root, file)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		// name:password:ID:... (passwd(5), group(5)); other lines, such
		// as NIS's "+" entries, name no id.
		f := bytes.SplitN(s.Bytes(), []byte(":"), 4)
		if len(f) < 3 {
			continue
		}
		if n, err := strconv.ParseUint(string(f[2]), 10, 32); err == nil && uint32(n) == id {
			return true, nil
		}
	}
	return false, s.Err()
}
