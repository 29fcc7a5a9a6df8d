package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxConfig bounds config.json: runc's default is 3 KiB, a large
// generated one tens of KiB; a bigger file is not a config.
const maxConfig = 16 << 20

// readSpec parses dir/config.json.
func readSpec(dir string) (*specs.Spec, error) {
	name := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, errors.New("no config.json: a bundle holds config.json beside its root file system; `runc spec` writes a default one")
	case err != nil:
		return nil, err
	case len(data) > maxConfig:
		return nil, fmt.Errorf("config.json is %d bytes: a runtime config is a few KiB; is it the right file?", len(data))
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, jsonError(data, err)
	}
	return &spec, nil
}

// jsonError says where in config.json decoding failed, as an editor
// counts: line and column from 1.
func jsonError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset)
		return fmt.Errorf("config.json: line %d, column %d: invalid JSON: %v: fix the JSON", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Errorf("config.json: line %d, column %d: %s is a JSON %s, the runtime spec wants %v", line, col, typ.Field, typ.Value, typ.Type)
	}
	return fmt.Errorf("config.json: %v", err)
}

// position turns a byte offset into a line and column. A syntax error's
// offset is just past the byte that failed, so the column is that byte's.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

// checkVersion accepts the spec versions this package's types describe:
// major 1 up to v1.3, with any patch or pre-release ("1.0.2-dev" is what
// runc writes). A later minor version may add fields these types drop,
// and a field dropped would be a request silently ignored.
func checkVersion(v string) error {
	const supported = "govmm supports runtime spec versions 1.0.0 through 1.3.x"
	if v == "" {
		return errors.New("config.json has no ociVersion: " + supported + `; add e.g. "ociVersion": "1.0.2"`)
	}
	core, _, _ := strings.Cut(v, "-")
	core, _, _ = strings.Cut(core, "+")
	f := strings.Split(core, ".")
	if len(f) == 3 && f[0] == "1" {
		minor, err := strconv.Atoi(f[1])
		if _, perr := strconv.Atoi(f[2]); err == nil && perr == nil && minor >= 0 && minor <= 3 {
			return nil
		}
	}
	return fmt.Errorf("ociVersion %q: %s (%s); write the config for one of those", v, supported, specs.Version)
}

// rootDir finds root.path, relative to the bundle when it is relative.
func rootDir(dir string, root *specs.Root) (string, error) {
	if root == nil || root.Path == "" {
		return "", errors.New(`config.json has no root.path: add "root": {"path": "rootfs"} naming the root file system's directory`)
	}
	p := root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("root.path %q: %s does not exist: unpack the image's file system there (e.g. `docker export $(docker create IMAGE) | tar -xC %s`)", root.Path, p, p)
	case err != nil:
		return "", fmt.Errorf("root.path %q: %w", root.Path, err)
	case !fi.IsDir():
		return "", fmt.Errorf("root.path %q: %s is not a directory: the root file system is an unpacked tree, not an image file", root.Path, p)
	}
	// The tree's own directory, not a link to it: RootImage walks the
	// tree without following links.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("root.path %q: %w", root.Path, err)
	}
	return real, nil
}
