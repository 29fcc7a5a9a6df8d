package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// modulesList names the image's kernel modules in load order
// (guest/mkinitramfs writes it, each module after its depends=).
const modulesList = "/etc/govmm/modules"

// loadModules loads the image's kernel modules, in the image's order; with
// want, only those it names. A missing or failing module is reported,
// never fatal: the checks that need it fail instead. Loading twice is
// harmless (EEXIST counts as loaded).
func loadModules(want map[string]bool) result {
	list, err := os.ReadFile(modulesList)
	if err != nil {
		return failed(err)
	}
	var loaded, missing, broken []string
	for _, name := range strings.Fields(string(list)) {
		if want != nil && !want[name] {
			continue
		}
		f, err := os.Open(filepath.Join("/lib/modules", name+".ko"))
		if err != nil {
			missing = append(missing, name)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil && err != unix.EEXIST {
			broken = append(broken, fmt.Sprintf("%s:%s", name, errnoName(err)))
			continue
		}
		loaded = append(loaded, name)
	}
	return result{
		ok:     len(missing)+len(broken) == 0,
		fields: []report.Field{kv("loaded", len(loaded)), kv("missing", strings.Join(missing, ",")), kv("failed", strings.Join(broken, ","))},
	}
}
