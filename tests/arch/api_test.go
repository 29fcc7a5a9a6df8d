package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// apiLeaks lists where the exported declarations of file (the root package's)
// name a type or value of another module package: what `go doc` would show
// of the internals. Function bodies and unexported fields are not the API.
func apiLeaks(fset *token.FileSet, file *ast.File) []string {
	imports := map[string]string{} // local name -> module package
	for _, imp := range file.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !under(p, module) {
			continue
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = p
	}
	var leaks []string
	check := func(n ast.Node) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && imports[id.Name] != "" {
				leaks = append(leaks, fmt.Sprintf("%s: %s.%s (%s)", fset.Position(sel.Pos()), id.Name, sel.Sel.Name, imports[id.Name]))
			}
			return true
		})
	}
	for _, d := range file.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedReceiver(d.Recv)) {
				continue
			}
			if d.Recv != nil {
				check(d.Recv)
			}
			check(d.Type)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						checkType(s.Type, check)
					}
				case *ast.ValueSpec:
					if anyExported(s.Names) {
						check(s.Type)
						for _, v := range s.Values {
							check(v)
						}
					}
				}
			}
		}
	}
	return leaks
}

// checkType checks a type declaration's exported parts: a struct's exported
// fields, an interface's methods, or all of any other type.
func checkType(t ast.Expr, check func(ast.Node)) {
	st, ok := t.(*ast.StructType)
	if !ok {
		check(t)
		return
	}
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 || anyExported(f.Names) { // embedded fields are promoted
			check(f.Type)
		}
	}
}

func exportedReceiver(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

func anyExported(names []*ast.Ident) bool {
	for _, n := range names {
		if n.IsExported() {
			return true
		}
	}
	return false
}

// TestRootAPIOwnsItsTypes: every type, constant and variable the public API
// shows is the root package's own (or the standard library's), so the
// internal packages can change without breaking a user.
func TestRootAPIOwnsItsTypes(t *testing.T) {
	var root *pkg
	pkgs := listPackages(t)
	for i := range pkgs {
		if pkgs[i].ImportPath == module {
			root = &pkgs[i]
		}
	}
	if root == nil || len(root.GoFiles) == 0 {
		t.Fatal("no root package")
	}
	fset := token.NewFileSet()
	for _, f := range root.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(root.Dir, f), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range apiLeaks(fset, file) {
			t.Errorf("the public API shows an internal package's name: %s", l)
		}
	}
}

func TestAPILeaksAreFound(t *testing.T) {
	const src = `package govmm

import (
	"io"
	"github.com/govmm/govmm/devices"
	blk "github.com/govmm/govmm/devices/virtio/blk"
	"github.com/govmm/govmm/internal/machine"
	"github.com/govmm/govmm/memory"
)

const Size = 4 * memory.MiB
var ErrX = machine.ErrNotRunning
type Disk struct {
	Path string
	IO   blk.IOMode
	m    *machine.Machine
}
type Alias = devices.UnhandledAccess
type VM struct{ m *machine.Machine }
func (v *VM) Unhandled() []devices.UnhandledAccess { var _ machine.Config; return nil }
func New(w io.Writer, c machine.Config) *VM { return nil }
func (v *VM) inner() machine.Result { return machine.Result{} }
type vm struct{}
func (v vm) Exported() machine.Result { return machine.Result{} }
`
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "api.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := apiLeaks(fset, file)
	want := []string{"memory.MiB", "machine.ErrNotRunning", "blk.IOMode", "devices.UnhandledAccess", "devices.UnhandledAccess", "machine.Config"}
	if len(got) != len(want) {
		t.Fatalf("found %d leaks %q, want %d: %q", len(got), got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("leak %d = %q, want %s", i, got[i], w)
		}
	}
}
