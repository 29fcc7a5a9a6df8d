package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kvmIOCTLType is the type byte of every KVM ioctl number (KVMIO in
// linux/kvm.h).
const kvmIOCTLType = 0xae

// kvmIOCTLs lists the calls in files that pass a KVM ioctl number: an
// integer literal or a constant of the same files shaped like one (32 bits,
// type byte KVMIO), handed to any function (a system call or a wrapper like
// package kvm's own ioctl), or one of x/sys/unix's KVM_* names handed to a
// system call. Only package kvm may make them.
func kvmIOCTLs(fset *token.FileSet, files []*ast.File) []string {
	consts := map[string]uint64{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if n, ok := intLiteral(v); ok && i < len(vs.Names) {
						consts[vs.Names[i].Name] = n
					}
				}
			}
		}
	}
	isKVM := func(e ast.Expr, syscall bool) bool {
		for {
			c, ok := e.(*ast.CallExpr) // uintptr(x)
			if !ok || len(c.Args) != 1 {
				break
			}
			e = c.Args[0]
		}
		switch e := e.(type) {
		case *ast.BasicLit:
			n, ok := intLiteral(e)
			return ok && ioctlShaped(n)
		case *ast.Ident:
			n, ok := consts[e.Name]
			return ok && ioctlShaped(n)
		case *ast.SelectorExpr:
			return syscall && strings.HasPrefix(e.Sel.Name, "KVM_")
		}
		return false
	}
	var out []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for _, a := range call.Args {
				if isKVM(a, isSyscall(call.Fun)) {
					out = append(out, fmt.Sprintf("%s: a KVM ioctl", fset.Position(call.Pos())))
					return false // once per call, not again for uintptr(arg)
				}
			}
			return true
		})
	}
	return out
}

// isSyscall says whether fun is unix.Syscall*, unix.RawSyscall*, unix.Ioctl*
// or the same of package syscall.
func isSyscall(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || (pkg.Name != "unix" && pkg.Name != "syscall") {
		return false
	}
	name := sel.Sel.Name
	return strings.HasPrefix(name, "Syscall") || strings.HasPrefix(name, "RawSyscall") || strings.HasPrefix(name, "Ioctl")
}

// ioctlShaped says whether n looks like a KVM ioctl number: _IOC(dir,
// KVMIO, nr, size) fits 32 bits.
func ioctlShaped(n uint64) bool { return n <= 0xffffffff && n>>8&0xff == kvmIOCTLType }

func intLiteral(e ast.Expr) (uint64, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.INT {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.ReplaceAll(lit.Value, "_", ""), 0, 64)
	return n, err == nil
}

func TestOnlyKVMIssuesKVMIOCTLs(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		if rel(p.ImportPath) == "kvm" {
			continue
		}
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range p.files() {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		checked += len(files)
		for _, v := range kvmIOCTLs(fset, files) {
			t.Errorf("%s makes %s: KVM ioctls belong in package kvm", displayName(rel(p.ImportPath)), v)
		}
	}
	if checked == 0 {
		t.Fatal("no Go files checked")
	}
}

func TestKVMIOCTLsAreFound(t *testing.T) {
	const src = `package x

const kvmRun = 0xae80
const tunSetIff = 0x400454ca

func f(fd uintptr) {
	unix.Syscall(unix.SYS_IOCTL, fd, kvmRun, 0)
	unix.Syscall(unix.SYS_IOCTL, fd, uintptr(0xc008ae67), 0)
	unix.IoctlSetInt(int(fd), unix.KVM_RUN, 0)
	unix.Syscall(unix.SYS_IOCTL, fd, tunSetIff, 0)
	unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, 0)
	ioctl(fd, kvmRun, 0)
	f(0xae)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := kvmIOCTLs(fset, []*ast.File{f})
	want := []string{"x.go:7:", "x.go:8:", "x.go:9:", "x.go:12:"}
	if len(got) != len(want) {
		t.Fatalf("found %q, want the KVM ioctls on lines 7-9 and 12, not the tap ones", got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("found %q, want %s", got[i], w)
		}
	}
}
