// Package arch checks the dependency rules of STYLE.md mechanically, so that
// the shape vCPU loop → bus → device survives growth.
package arch

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/govmm/govmm"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
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

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func TestDependenciesPointOneWay(t *testing.T) {
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := rel(imp)
			switch {
			case dep == "" && !strings.HasPrefix(name, "cmd/") && !strings.HasPrefix(name, "tests/"):
				t.Errorf("%s imports the root package: only cmd/ and tests/ may", name)
			case strings.HasPrefix(name, "devices") && (dep == "kvm" || dep == "vcpu"):
				t.Errorf("%s imports %s: devices get interrupts as interfaces, never KVM", name, dep)
			case strings.HasPrefix(name, "guest/") && !strings.HasPrefix(dep, "guest/"):
				t.Errorf("%s imports host package %s: guest code stands alone", name, dep)
			case (name == "kvm" || name == "memory") && dep != "":
				t.Errorf("%s imports %s: it sits at the bottom, on x/sys only", name, dep)
			case strings.HasPrefix(name, "boot") && dep != "memory" && !strings.HasPrefix(dep, "boot"):
				t.Errorf("%s imports %s: boot describes entry state as data, from memory only", name, dep)
			}
		}
	}
}

func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, p := range listPackages(t) {
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, imp := range file.Imports {
				if imp.Path.Value == `"unsafe"` && !strings.HasSuffix(f, "_unsafe.go") {
					t.Errorf("%s/%s imports unsafe: keep unsafe code in files named *_unsafe.go", rel(p.ImportPath), f)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files checked")
	}
}
