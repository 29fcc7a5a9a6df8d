// Package arch checks the dependency rules of the project's design
// mechanically, so that the shape vCPU loop → bus → device survives growth
// and the root package stays the public API only.
package arch

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/govmm/govmm"

type pkg struct {
	ImportPath   string
	Dir          string
	Imports      []string
	TestImports  []string
	XTestImports []string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
}

// files is every Go file of the package that the build or its tests compile.
func (p pkg) files() []string {
	return append(append(append([]string(nil), p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles...)
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// rel is a module package's path inside the module: "" for the root.
func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// importRule says what is wrong with module package from importing module
// package dep (both relative to the module), or "" if nothing is.
func importRule(from, dep string) string {
	switch {
	case from == dep:
		return "" // a package's external tests import it
	case dep == "" && !under(from, "cmd") && !under(from, "tests"):
		return "imports the root package: only cmd/ and tests/ may"
	case under(from, "cmd") && dep != "" && !under(dep, "cmd") && !under(dep, "guest"):
		return "imports " + dep + ": the command uses the public API only, the root package (and its own packages, and guest/ protocols)"
	case under(dep, "internal/machine") && from != "":
		return "imports " + dep + ": only the root package builds machines"
	case under(from, "devices") && (dep == "kvm" || dep == "vcpu" || under(dep, "internal/machine") || under(dep, "internal/kvmirq")):
		return "imports " + dep + ": devices get interrupts as interfaces, never KVM"
	case under(from, "guest") && !under(dep, "guest"):
		return "imports host package " + dep + ": guest code stands alone"
	case (from == "kvm" || from == "memory") && dep != "":
		return "imports " + dep + ": it sits at the bottom, on x/sys only"
	case under(from, "boot") && dep != "memory" && !under(dep, "boot"):
		return "imports " + dep + ": boot describes entry state as data, from memory only"
	}
	return ""
}

// importViolations lists what p imports against the rules, its tests' imports
// included.
func importViolations(p pkg) []string {
	name := rel(p.ImportPath)
	var out []string
	for _, set := range []struct {
		what    string
		imports []string
	}{{"", p.Imports}, {" (in a test)", p.TestImports}, {" (in an external test)", p.XTestImports}} {
		for _, imp := range set.imports {
			if !under(imp, module) {
				continue
			}
			if msg := importRule(name, rel(imp)); msg != "" {
				out = append(out, fmt.Sprintf("%s%s %s", displayName(name), set.what, msg))
			}
		}
	}
	return out
}

func displayName(rel string) string {
	if rel == "" {
		return "the root package"
	}
	return rel
}

func TestDependenciesPointOneWay(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, v := range importViolations(p) {
			t.Error(v)
		}
	}
}

// Each rule catches what it is meant to, test files included.
func TestImportRulesCatchViolations(t *testing.T) {
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: module + "/vcpu", TestImports: []string{module}}, "only cmd/ and tests/"},
		{pkg{ImportPath: module + "/cmd/govmm", Imports: []string{module + "/memory"}}, "public API only"},
		{pkg{ImportPath: module + "/cmd/govmm", XTestImports: []string{module + "/devices"}}, "public API only"},
		{pkg{ImportPath: module + "/cmd/govmm/internal/bundle", Imports: []string{module + "/internal/machine"}}, "public API only"},
		{pkg{ImportPath: module + "/vcpu", Imports: []string{module + "/internal/machine"}}, "only the root package builds"},
		{pkg{ImportPath: module + "/tests/boot", TestImports: []string{module + "/internal/machine"}}, "only the root package builds"},
		{pkg{ImportPath: module + "/devices/serial", TestImports: []string{module + "/kvm"}}, "never KVM"},
		{pkg{ImportPath: module + "/devices/virtio", Imports: []string{module + "/internal/kvmirq"}}, "never KVM"},
		{pkg{ImportPath: module + "/devices/pci", Imports: []string{module + "/vcpu"}}, "never KVM"},
	} {
		got := importViolations(tc.p)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s importing %v %v %v: %q, want one violation saying %q", tc.p.ImportPath, tc.p.Imports, tc.p.TestImports, tc.p.XTestImports, got, tc.want)
		}
	}
	ok := []pkg{
		{ImportPath: module, Imports: []string{module + "/internal/machine"}},
		{ImportPath: module + "/cmd/govmm", Imports: []string{module}},
		{ImportPath: module + "/cmd/govmm", Imports: []string{module + "/cmd/govmm/internal/bundle", module + "/guest/agent"}},
		{ImportPath: module + "/internal/machine", XTestImports: []string{module + "/internal/machine"}},
		{ImportPath: module + "/tests/boot", TestImports: []string{module}},
	}
	for _, p := range ok {
		if got := importViolations(p); len(got) != 0 {
			t.Errorf("%s importing %v %v %v: %q, want none", p.ImportPath, p.Imports, p.TestImports, p.XTestImports, got)
		}
	}
}
