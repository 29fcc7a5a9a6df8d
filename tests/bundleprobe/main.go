// Command bundleprobe is the process of the boot tests' OCI bundle: run
// under govmm run --bundle and under runc, it reports what it sees so the
// tests can compare the two field by field, and it exercises exit
// statuses, signals and stdio. It is built static, to run in a root file
// system that holds nothing else.
//
//	bundleprobe report        print a Report as one JSON line on stdout
//	bundleprobe exit N        exit with status N
//	bundleprobe kill SIG      kill itself with signal number SIG
//	bundleprobe wait          print "waiting", then wait for a signal
//	bundleprobe stdio N SEED  read stdin to its end, write N bytes of
//	                          pattern SEED to stdout and of SEED+1 to
//	                          stderr, then "stdin-sha256 HEX" on stdout
//	bundleprobe serve DIR PORT  print DIR/in.txt and the addresses of the
//	                          interfaces as a JSON line, write DIR/out.txt,
//	                          then echo one TCP connection on PORT back
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// Report is what the process sees of its environment.
type Report struct {
	Args     []string          `json:"args"`
	Env      []string          `json:"env"`
	Cwd      string            `json:"cwd"`
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	Groups   []int             `json:"groups"`
	Hostname string            `json:"hostname"`
	Rlimits  map[string][2]int `json:"rlimits"` // soft, hard (-1: unlimited)
	Umask    int               `json:"umask"`
	// Mounts maps each mount point to its file system type.
	Mounts       map[string]string `json:"mounts"`
	RootWritable bool              `json:"root_writable"`
	// NoNewPrivs is the NoNewPrivs line of /proc/self/status.
	NoNewPrivs string `json:"no_new_privs"`
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: bundleprobe report | exit N | kill SIG | stdio N SEED")
	}
	switch os.Args[1] {
	case "report":
		b, err := json.Marshal(report())
		if err != nil {
			fail(err.Error())
		}
		fmt.Println(string(b))
	case "exit":
		os.Exit(atoi(arg(2)))
	case "kill":
		syscall.Kill(os.Getpid(), syscall.Signal(atoi(arg(2)))) //nolint:errcheck // the next line says if it failed
		select {}
	case "wait":
		fmt.Println("waiting")
		for {
			time.Sleep(time.Hour)
		}
	case "stdio":
		stdio(uint64(atoi(arg(2))), uint64(atoi(arg(3))))
	case "serve":
		serve(arg(2), arg(3))
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func report() Report {
	r := Report{Args: os.Args, Env: os.Environ(), UID: os.Getuid(), GID: os.Getgid(), Rlimits: map[string][2]int{}}
	r.Cwd, _ = os.Getwd()
	r.Groups, _ = os.Getgroups()
	sort.Ints(r.Groups)
	r.Hostname, _ = os.Hostname()
	for name, res := range map[string]int{"RLIMIT_NOFILE": syscall.RLIMIT_NOFILE, "RLIMIT_CORE": syscall.RLIMIT_CORE, "RLIMIT_STACK": syscall.RLIMIT_STACK} {
		var l syscall.Rlimit
		if syscall.Getrlimit(res, &l) == nil {
			r.Rlimits[name] = [2]int{limit(l.Cur), limit(l.Max)}
		}
	}
	r.Umask = syscall.Umask(0)
	syscall.Umask(r.Umask)
	r.Mounts = mounts()
	f, err := os.CreateTemp("/", ".probe-")
	if err == nil {
		r.RootWritable = true
		f.Close()
		os.Remove(f.Name())
	}
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
				r.NoNewPrivs = strings.TrimSpace(v)
			}
		}
	}
	return r
}

func limit(v uint64) int {
	if v == ^uint64(0) {
		return -1
	}
	return int(v)
}

// mounts reads /proc/self/mountinfo: mount point → file system type.
func mounts() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SOURCE SUPER
		fields := strings.Fields(s.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && len(fields) > 4 {
				out[fields[4]] = fields[i+1]
				break
			}
		}
	}
	return out
}

// Served is serve's report.
type Served struct {
	In    string   `json:"in"`    // DIR/in.txt
	Addrs []string `json:"addrs"` // every interface's addresses, ADDR/PREFIX
}

// serve shows that a disk mount and a network reach the process: it reads
// a file the host put on the disk, leaves one there for the host to read,
// and echoes what the host sends over TCP.
func serve(dir, port string) {
	in, err := os.ReadFile(filepath.Join(dir, "in.txt"))
	if err != nil {
		fail(err.Error())
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("written by the process\n"), 0o644); err != nil {
		fail(err.Error())
	}
	r := Served{In: string(in)}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		fail(err.Error())
	}
	for _, a := range addrs {
		r.Addrs = append(r.Addrs, a.String())
	}
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fail(err.Error())
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	c, err := l.Accept()
	if err != nil {
		fail(err.Error())
	}
	if _, err := io.Copy(c, c); err != nil {
		fail(err.Error())
	}
	c.Close()
}

func stdio(n, seed uint64) {
	h := sha256.New()
	if _, err := io.Copy(h, os.Stdin); err != nil {
		fail("read stdin: " + err.Error())
	}
	write(os.Stdout, n, seed)
	write(os.Stderr, n, seed+1)
	fmt.Printf("stdin-sha256 %s\n", hex.EncodeToString(h.Sum(nil)))
}

func write(w io.Writer, n, seed uint64) {
	buf := make([]byte, 64<<10)
	for off := uint64(0); off < n; {
		c := min(uint64(len(buf)), n-off)
		pattern.Fill(buf[:c], seed, off)
		if _, err := w.Write(buf[:c]); err != nil {
			fail("write: " + err.Error())
		}
		off += c
	}
}

func arg(i int) string {
	if len(os.Args) <= i {
		fail("missing argument")
	}
	return os.Args[i]
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bundleprobe:", msg)
	os.Exit(100)
}
