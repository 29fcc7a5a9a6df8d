// Command govmm-compare is `govmm compare`: it runs one OCI bundle under
// govmm, QEMU, runc and crun and prints what the microVM costs. It is a
// binary of its own, installed beside govmm, which execs it: its chart,
// progress bar and their dependencies (fonts, image codecs, net/http)
// would otherwise be linked into every VM's govmm, whose package
// initialisation alone pages in about 2 MiB of them (docs/benchmarks.md).
package main

import (
	"os"

	"github.com/govmm/govmm/cmd/govmm/internal/compare"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "help" {
		// govmm help compare: the usage on standard output.
		os.Exit(compare.Main([]string{"--help"}, os.Stdout, os.Stdout))
	}
	os.Exit(compare.Main(args, os.Stdout, os.Stderr))
}
