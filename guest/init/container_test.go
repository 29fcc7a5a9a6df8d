package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/agent"
)

func TestMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts  []string
		flags uintptr
		data  string
	}{
		{nil, 0, ""},
		{[]string{"nosuid", "noexec", "nodev"}, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, ""},
		{[]string{"nosuid", "strictatime", "mode=755", "size=65536k"}, unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k"},
		// devpts as runc spec writes it: its options are data.
		{[]string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{[]string{"ro", "rw"}, 0, ""},
		{[]string{"rw", "ro"}, unix.MS_RDONLY, ""},
		{[]string{"nosuid", "suid", "dev", "exec"}, 0, ""},
		{[]string{"relatime", "norelatime", "noatime", "nodiratime", "sync"}, unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_SYNCHRONOUS, ""},
		{[]string{"defaults", "", "async"}, 0, ""},
	} {
		flags, data := mountOptions(tc.opts)
		if flags != tc.flags || data != tc.data {
			t.Errorf("mountOptions(%q) = %#x, %q; want %#x, %q", tc.opts, flags, data, tc.flags, tc.data)
		}
	}
}

func TestMountInRejectsWhatAVMCannotMount(t *testing.T) {
	root := t.TempDir()
	for _, m := range []agent.Mount{
		{Destination: "relative", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/data", Type: "bind", Source: "/srv/data"},
		{Destination: "/data", Type: "none", Source: "/srv/data", Options: []string{"rbind", "ro"}},
	} {
		if err := mountIn(root, m); err == nil {
			t.Errorf("mountIn(%+v) succeeded", m)
		}
	}
}

// The names of the OCI runtime spec's process.rlimits (config.md).
func TestRlimitNames(t *testing.T) {
	want := map[string]int{
		"RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
		"RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
		"RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
		"RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
	}
	for name, res := range want {
		if got, ok := rlimitByName[name]; !ok || got != res {
			t.Errorf("rlimitByName[%s] = %d, %v; want %d (asm-generic/resource.h)", name, got, ok, res)
		}
	}
	if len(rlimitByName) != len(want) {
		t.Errorf("rlimitByName has %d names, want %d", len(rlimitByName), len(want))
	}
}

func TestLookPath(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	for path, mode := range map[string]os.FileMode{
		filepath.Join(other, "tool"): 0o644, // not executable: skipped
		filepath.Join(dir, "tool"):   0o755,
		filepath.Join(dir, "sub"):    0o755,
	} {
		if err := os.WriteFile(path, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(other, "sub"), 0o755); err != nil { // a directory is no executable
		t.Fatal(err)
	}
	env := []string{"PATH=/nowhere", "PATH=" + other + ":" + dir}
	for name, want := range map[string]string{
		"tool":      filepath.Join(dir, "tool"),
		"sub":       filepath.Join(dir, "sub"),
		"./tool":    "./tool",
		"/bin/none": "/bin/none", // a path is not looked up: exec reports it
	} {
		if got, err := lookPath(name, env); err != nil || got != want {
			t.Errorf("lookPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := lookPath("missing", env); !errors.Is(err, errNotFound) {
		t.Errorf("lookPath(missing) = %v, want errNotFound", err)
	}
	if _, err := lookPath("tool", []string{"PATH="}); !errors.Is(err, errNotFound) {
		t.Errorf("lookPath with an empty PATH = %v, want errNotFound (the cwd is not searched here)", err)
	}
}

func TestLookupEnv(t *testing.T) {
	env := []string{"HOME=/a", "PATHX=1", "HOME=/b", "EMPTY="}
	if v, ok := lookupEnv(env, "HOME"); !ok || v != "/b" {
		t.Errorf("HOME = %q, %v; want the last, /b", v, ok)
	}
	if v, ok := lookupEnv(env, "EMPTY"); !ok || v != "" {
		t.Errorf("EMPTY = %q, %v; want set and empty", v, ok)
	}
	if _, ok := lookupEnv(env, "PATH"); ok {
		t.Error("PATH found in PATHX")
	}
}

func TestHomeIn(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\nnohome:x:5:5::::\nprobe:x:1000:1000:probe:/srv/work:/bin/sh\nbroken\n"
	for uid, want := range map[uint32]string{0: "/root", 1000: "/srv/work", 5: "/", 42: "/"} {
		if got := homeIn(strings.NewReader(passwd), uid); got != want {
			t.Errorf("home of %d = %q, want %q", uid, got, want)
		}
	}
}

// The host's stdin_eof can overtake the input on the other port: the
// process's stdin closes only once all the counted bytes passed, and every
// byte passes unchanged.
func TestStdinEndsByCount(t *testing.T) {
	portR, portW := pipe(t)
	inR, inW := pipe(t)
	ctlR, ctlW := pipe(t)
	c := &containerRun{stdio: portR, stdinW: inW, inTotal: -1}
	go c.serveControl(agent.NewReader(ctlR))
	go c.relayIn()
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := agent.Write(ctlW, agent.Message{StdinEOF: true, StdinBytes: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // let the message arrive first
	go portW.Write(data)
	got, err := readAllWithin(inR, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the process read %d bytes, not the %d sent", len(got), len(data))
	}
}

// Output passes unchanged, and outputs counts the relay until its source
// ends.
func TestRelayOut(t *testing.T) {
	outR, outW := pipe(t)
	portR, portW := pipe(t)
	c := &containerRun{}
	c.relayOut(outR, portW)
	data := make([]byte, 1<<20)
	rand.Read(data)
	go func() { outW.Write(data); outW.Close() }()
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(portR, int64(len(data)))); done <- b }()
	outputs.Wait()
	if got := <-done; !bytes.Equal(got, data) {
		t.Fatalf("the port got %d bytes, not the %d written", len(got), len(data))
	}
}

func pipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func readAllWithin(r *os.File, d time.Duration) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() { b, err := io.ReadAll(r); ch <- res{b, err} }()
	select {
	case x := <-ch:
		return x.b, x.err
	case <-time.After(d):
		return nil, errors.New("stdin did not end: the count was not honoured")
	}
}

func TestMountsDevpts(t *testing.T) {
	runcSpec := []agent.Mount{{Destination: "/proc", Type: "proc"}, {Destination: "/dev/pts/", Type: "devpts"}}
	if !mountsDevpts(runcSpec) {
		t.Error("runc spec's devpts at /dev/pts/ not seen")
	}
	if mountsDevpts([]agent.Mount{{Destination: "/dev/pts", Type: "tmpfs"}, {Destination: "/pts", Type: "devpts"}}) {
		t.Error("a devpts elsewhere or a tmpfs at /dev/pts counted as the terminal's devpts")
	}
}

// A pair from openPTY passes bytes from the slave to the master and has
// the console size asked for.
func TestOpenPTY(t *testing.T) {
	m, s, err := openPTY("/dev/ptmx", "/dev/pts", &agent.Size{Rows: 40, Cols: 132})
	if err != nil {
		t.Fatalf("openPTY: %v (the test needs the host's /dev/ptmx and /dev/pts)", err)
	}
	defer m.Close()
	defer s.Close()
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 40 || ws.Col != 132 {
		t.Errorf("slave's size = %+v, %v; want 40x132", ws, err)
	}
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := m.Read(buf)
	if err != nil || string(buf[:n]) != "hi" {
		t.Errorf("master read %q, %v; want \"hi\"", buf[:n], err)
	}
}

func TestInterfaceByMAC(t *testing.T) {
	sys := t.TempDir()
	for name, mac := range map[string]string{"lo": "00:00:00:00:00:00", "eth0": "52:54:00:aa:bb:01", "eth1": "52:54:00:aa:bb:02"} {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.WriteFile(filepath.Join(sys, name, "address"), []byte(mac+"\n"), 0o644)
	}
	mac, _ := net.ParseMAC("52:54:00:AA:BB:02")
	if got, err := interfaceByMAC(sys, mac, time.Second); err != nil || got != "eth1" {
		t.Fatalf("interfaceByMAC = %q, %v; want eth1", got, err)
	}
	mac, _ = net.ParseMAC("52:54:00:aa:bb:03")
	if _, err := interfaceByMAC(sys, mac, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "52:54:00:aa:bb:03") {
		t.Fatalf("a missing MAC: %v; want an error naming it", err)
	}
}
