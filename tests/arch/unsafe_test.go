package arch

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// unsafeFileOK says whether a file with this name may import unsafe.
func unsafeFileOK(name string) bool {
	return strings.HasSuffix(name, "_unsafe.go") || strings.HasSuffix(name, "_unsafe_test.go")
}

func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, p := range listPackages(t) {
		for _, f := range p.files() {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, imp := range file.Imports {
				if imp.Path.Value == `"unsafe"` && !unsafeFileOK(f) {
					t.Errorf("%s/%s imports unsafe: keep unsafe code in files named *_unsafe.go (*_unsafe_test.go for tests)", rel(p.ImportPath), f)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files checked")
	}
}

func TestUnsafeFileNames(t *testing.T) {
	for name, want := range map[string]bool{
		"ring_unsafe.go": true, "abi_unsafe_test.go": true,
		"ring.go": false, "ring_test.go": false, "unsafe_helpers_test.go": false,
	} {
		if got := unsafeFileOK(name); got != want {
			t.Errorf("unsafeFileOK(%q) = %v, want %v", name, got, want)
		}
	}
}
