package bundle

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCpuset: any linux.resources.cpu.cpus string is counted or refused,
// never a panic or a count no host has.
func FuzzCpuset(f *testing.F) {
	for _, s := range []string{"0-3,6", "0", "1-1", "3-1", "0-", "0-4294967295", " 1 , 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := cpusetCount(s)
		if err == nil && (n < 1 || n > (strings.Count(s, ",")+1)<<16) {
			t.Errorf("cpusetCount(%q) = %d", s, n)
		}
	})
}

// FuzzConfig: any config.json is loaded or refused with an ErrBadBundle,
// never a panic.
func FuzzConfig(f *testing.F) {
	runc, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(runc))
	f.Add(`{"ociVersion": "1.0.2", "process": {"args": [5]}}`)
	f.Add("{\n\"ociVersion\":\n")
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, config string) {
		var spec specs.Spec
		if err := json.Unmarshal([]byte(config), &spec); err != nil {
			if jsonError([]byte(config), err) == nil {
				t.Error("no error for bad JSON")
			}
			return
		}
		if b, err := check(fx.dir, &spec); err == nil && b.Process.RootDevice != RootDevice {
			t.Errorf("a checked bundle's Process has RootDevice %q", b.Process.RootDevice)
		}
	})
}
