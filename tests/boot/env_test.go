// Package boot holds govmm's boot tests: they run the real govmm binary, and
// govmm as a library, on a real Debian kernel and assert what the guest
// reports about itself. `make test` runs them, on /dev/kvm or inside the
// nested-KVM sandbox.
package boot

import (
	"os"
	"strings"
	"testing"
)

// env is what the Makefile hands the boot tests.
type env struct {
	bin, kernel, initrd string
	payloadSHA256       string
}

func testEnv(t *testing.T) env {
	t.Helper()
	e := env{bin: os.Getenv("GOVMM_BIN"), kernel: os.Getenv("GOVMM_KERNEL"), initrd: os.Getenv("GOVMM_INITRD")}
	if e.bin == "" || e.kernel == "" || e.initrd == "" {
		msg := "GOVMM_BIN, GOVMM_KERNEL and GOVMM_INITRD are not set: run the boot tests with `make test` (or `make boot-test`), which builds them and picks /dev/kvm or the sandbox"
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if f := os.Getenv("GOVMM_PAYLOAD_SHA256_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("payload digest: %v", err)
		}
		e.payloadSHA256 = strings.TrimSpace(strings.Fields(string(b) + " ")[0])
	}
	return e
}
