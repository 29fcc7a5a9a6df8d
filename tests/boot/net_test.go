package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// hostTap creates a tap with addr (CIDR) on the host side, up, and removes
// it when the test ends. The sandbox has no network card, so the subnet is
// the test's alone.
func hostTap(t *testing.T, name, addr string) {
	t.Helper()
	ip := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "link", "del", name).Run() // left over from a killed run
	ip("tuntap", "add", "dev", name, "mode", "tap")
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	ip("addr", "add", addr, "dev", name)
	ip("link", "set", name, "up")
}

// transfer is one TCP stream between host and guest, served by the host.
type transfer struct {
	port    int
	mib     uint64
	l       net.Listener
	hostSum chan string // what the host received (guest→host), or sent (host→guest)
}

// sum returns the host's digest once the guest is gone: a guest that never
// connected gets an error instead of a wait.
func (tr *transfer) sum() string {
	tr.l.Close()
	return <-tr.hostSum
}

// serveReceive accepts one connection and returns the sha256 of all it reads.
func serveReceive(t *testing.T, addr string, port int, mib uint64) *transfer {
	return serveReceiveFor(t, addr, port, mib, bootTimeout)
}

// serveReceiveFor is serveReceive for a connection that may last limit.
func serveReceiveFor(t *testing.T, addr string, port int, mib uint64, limit time.Duration) *transfer {
	return serve(t, addr, port, mib, limit, func(c net.Conn, h hash.Hash) string {
		n, err := io.Copy(h, c)
		if err != nil {
			return fmt.Sprintf("read after %d bytes: %v", n, err)
		}
		return ""
	})
}

// serveSend accepts one connection and writes mib MiB of the pattern for seed port.
func serveSend(t *testing.T, addr string, port int, mib uint64) *transfer {
	return serve(t, addr, port, mib, bootTimeout, func(c net.Conn, h hash.Hash) string {
		if _, err := io.CopyN(io.MultiWriter(c, h), pattern.NewReader(uint64(port)), int64(mib<<20)); err != nil {
			return "write: " + err.Error()
		}
		return ""
	})
}

// serve listens on addr:port, accepts one connection and runs move on it
// with a sha256 to fill, for at most limit; hostSum gets the digest, or
// what move says went wrong.
func serve(t *testing.T, addr string, port int, mib uint64, limit time.Duration, move func(net.Conn, hash.Hash) string) *transfer {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", addr, port))
	if err != nil {
		t.Fatal(err)
	}
	tr := &transfer{port: port, mib: mib, l: l, hostSum: make(chan string, 1)}
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			tr.hostSum <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(limit)) // a guest gone mid-transfer sends no FIN
		h := sha256.New()
		if problem := move(c, h); problem != "" {
			tr.hostSum <- problem
			return
		}
		tr.hostSum <- hex.EncodeToString(h.Sum(nil))
	}()
	return tr
}

func patternSum(seed, mib uint64) string {
	s := pattern.SHA256(seed, mib<<20)
	return hex.EncodeToString(s[:])
}

// Both directions over TCP: the guest sends and receives the pattern, and
// the digests on both ends match the pattern's.
func TestNetworkMovesDataBothWays(t *testing.T) {
	e := testEnv(t)
	hostTap(t, "gvtap0", "10.77.0.1/24")
	const mib = 64
	send := serveReceive(t, "10.77.0.1", 5001, mib) // guest → host
	recv := serveSend(t, "10.77.0.1", 5002, mib)    // host → guest
	o := bootWith(t, e, []string{"--net", "tap=gvtap0,mac=52:54:00:00:77:02"},
		fmt.Sprintf("govmm.check=net=eth0:10.77.0.2/24,tcpsend=10.77.0.1:5001:%d,tcprecv=10.77.0.1:5002:%d", mib, mib))
	link := passed(t, o, "net=eth0:10.77.0.2/24")
	wantField(t, link, "mac", "52:54:00:00:77:02")
	gs := passed(t, o, fmt.Sprintf("tcpsend=10.77.0.1:5001:%d", mib))
	gr := passed(t, o, fmt.Sprintf("tcprecv=10.77.0.1:5002:%d", mib))
	want := patternSum(5001, mib)
	wantField(t, gs, "sha256", want)
	if got := send.sum(); got != want {
		t.Errorf("host received sha256 %s from the guest, want %s", got, want)
	}
	sent := recv.sum()
	if sent != patternSum(5002, mib) {
		t.Fatalf("host side of the send: %s", sent)
	}
	wantField(t, gr, "sha256", sent)
}

// Two NICs on two taps, each on its own subnet, each carrying its own stream.
func TestTwoNICs(t *testing.T) {
	e := testEnv(t)
	hostTap(t, "gvtap1", "10.78.0.1/24")
	hostTap(t, "gvtap2", "10.79.0.1/24")
	a := serveReceive(t, "10.78.0.1", 5003, 4)
	b := serveReceive(t, "10.79.0.1", 5004, 4)
	stats := filepath.Join(t.TempDir(), "stats.json")
	o := bootWith(t, e, []string{"--net", "tap=gvtap1,mac=52:54:00:00:78:02", "--net", "tap=gvtap2,mac=52:54:00:00:79:02", "--stats", stats},
		"govmm.check=net=eth0:10.78.0.2/24,net=eth1:10.79.0.2/24,tcpsend=10.78.0.1:5003:4,tcpsend=10.79.0.1:5004:4")
	wantField(t, passed(t, o, "net=eth0:10.78.0.2/24"), "mac", "52:54:00:00:78:02")
	wantField(t, passed(t, o, "net=eth1:10.79.0.2/24"), "mac", "52:54:00:00:79:02")
	passed(t, o, "tcpsend=10.78.0.1:5003:4")
	passed(t, o, "tcpsend=10.79.0.1:5004:4")
	for _, tr := range []*transfer{a, b} {
		if got, want := tr.sum(), patternSum(uint64(tr.port), tr.mib); got != want {
			t.Errorf("port %d: host received sha256 %s, want %s", tr.port, got, want)
		}
	}
	// --stats counts each NIC's transmit queue (q1): a 4 MiB stream is at
	// least 64 frames of at most 64 KiB, each a chain, and the guest must
	// have kicked at least once.
	queues := readStats(t, stats).Queues
	for _, q := range []string{"net0.q1", "net1.q1"} {
		c, ok := queues[q]
		if !ok || c.Chains < 64 || c.Kicks == 0 || c.Interrupts > c.Chains {
			t.Errorf("--stats virtqueue %s = %+v (present %v): want at least 64 chains, a kick, no more interrupts than chains", q, c, ok)
		}
	}
}

// statsFile is the part of govmm's --stats file the tests read.
type statsFile struct {
	Reason string `json:"reason"`
	Queues map[string]struct {
		Kicks, Chains, Interrupts uint64
	} `json:"virtqueues"`
}

func readStats(t *testing.T, path string) statsFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--stats file: %v", err)
	}
	var s statsFile
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("--stats file: %v\n%s", err, data)
	}
	return s
}

// Without CAP_NET_ADMIN govmm cannot create the tap it was given: it says so
// and how to fix it, and exits with the error status.
func TestMissingTapIsAClearError(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", "--inh-caps=-all", "--bounding-set=-net_admin", "--",
		e.bin, "run", "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--net", "tap=gvnosuch0",
		"--cmdline", cmdline())
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != statusError {
		t.Fatalf("govmm without CAP_NET_ADMIN and a missing tap: %v, want exit status %d\n%s", err, statusError, out)
	}
	t.Logf("govmm said: %s", strings.TrimSpace(string(out)))
	for _, want := range []string{"gvnosuch0", "CAP_NET_ADMIN"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error does not mention %q:\n%s", want, out)
		}
	}
}
