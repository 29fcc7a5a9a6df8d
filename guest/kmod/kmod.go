// Package kmod finds kernel modules in a Debian kernel package unpacked with
// `dpkg -x`. Both the guest initramfs builder and the test sandbox pack
// modules from such trees; the guest loads them in the order given.
package kmod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Find returns the path of each named module's .ko under tree/lib/modules,
// in the order of names. The Makefile unpacks modules uncompressed.
func Find(tree string, names []string) ([]string, error) {
	root := filepath.Join(tree, "lib", "modules")
	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := strings.CutSuffix(d.Name(), ".ko"); ok {
			found[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	out := make([]string, len(names))
	for i, m := range names {
		if out[i] = found[m]; out[i] == "" {
			return nil, fmt.Errorf("module %s.ko not found under %s: is it an unpacked Debian linux-image-*-amd64 with uncompressed modules?", m, root)
		}
	}
	return out, nil
}
