package boot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// servedReport is bundleprobe serve's first line.
type servedReport struct {
	In    string   `json:"in"`
	Addrs []string `json:"addrs"`
}

// TestBundleDiskAndNetwork: a bundle that mounts an ext4 on a host block
// device, with a network, under runc (a veth pair into the namespace it
// joins) and under govmm (a virtio disk and a NIC on a tap, --net ip=):
// the process reads the file the host put on the disk and leaves one the
// host finds after it, its interface has the address given, and a TCP
// connection from the host is echoed back. These are what govmm compare's
// disk and network measures stand on.
func TestBundleDiskAndNetwork(t *testing.T) {
	e := testEnv(t)
	for _, rt := range []string{"runc", "govmm"} {
		t.Run(rt, func(t *testing.T) {
			dev, img := scratchDisk(t, "from the host\n")
			bundle := probeBundle(t, "serve", "/scratch", "7777")
			var extra []string
			var addr string
			editSpec(t, bundle, func(spec map[string]any) {
				spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
					"destination": "/scratch", "type": "ext4", "source": dev, "options": []any{"rw"}})
				if rt == "runc" {
					addr = "10.254.198.2/30"
					joinTestNetns(t, spec, "10.254.198.1/30", addr)
				}
			})
			if rt == "govmm" {
				addr = "10.254.198.6/30"
				tap := testTap(t, "10.254.198.5/30")
				extra = []string{"--net", "tap=" + tap + ",ip=" + addr}
			}

			ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
			defer cancel()
			cmd := containerCommand(t, ctx, e, rt, bundle, extra...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewReader(out)
			first, err := lines.ReadString('\n')
			var rep servedReport
			if err != nil || json.Unmarshal([]byte(first), &rep) != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%s: no report (%v): %q\nstderr:\n%s", rt, err, first, stderr.String())
			}
			if rep.In != "from the host\n" {
				t.Errorf("%s: the process read %q from the disk, want the host's file", rt, rep.In)
			}
			if !slices.Contains(rep.Addrs, addr) || !slices.Contains(rep.Addrs, "127.0.0.1/8") {
				t.Errorf("%s: the process's addresses are %q, want %s and 127.0.0.1/8", rt, rep.Addrs, addr)
			}
			host, _, _ := strings.Cut(addr, "/")
			msg := "through the NIC and back\n"
			if got, err := echo(host+":7777", msg); err != nil || got != msg {
				t.Errorf("%s: TCP echo from the host: %q, %v; want %q", rt, got, err, msg)
			}
			io.Copy(io.Discard, lines)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%s: %v\nstderr:\n%s", rt, err, stderr.String())
			}
			if got := debugfsCat(t, img, "/out.txt"); got != "written by the process\n" {
				t.Errorf("%s: out.txt on the disk after the process: %q", rt, got)
			}
		})
	}
}

// containerCommand is runContainer's command, with extra flags for govmm.
func containerCommand(t *testing.T, ctx context.Context, e env, runtime, bundle string, extra ...string) *exec.Cmd {
	t.Helper()
	switch runtime {
	case "govmm":
		args := append([]string{"run", "--bundle", bundle, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M"}, extra...)
		return exec.CommandContext(ctx, e.bin, args...)
	case "runc":
		runc, err := exec.LookPath("runc")
		if err != nil {
			t.Fatalf("runc is not installed (apt-get install runc; make test installs it): %v", err)
		}
		id := fmt.Sprintf("govmm-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		return exec.CommandContext(ctx, runc, "run", "--bundle", bundle, id)
	}
	t.Fatalf("unknown runtime %q", runtime)
	return nil
}

// editSpec rewrites the bundle's config.json through edit.
func editSpec(t *testing.T, bundle string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	edit(spec)
	if b, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// scratchDisk makes a 16 MiB ext4 image holding in.txt and a loop device
// over it, both removed when the test ends.
func scratchDisk(t *testing.T, content string) (dev, img string) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "in.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(dir, "scratch.img")
	must(t, "mkfs.ext4", "-q", "-d", src, img, "16M")
	// The probe runs as uid 1000: the file system's root is its.
	must(t, "debugfs", "-w", "-R", "set_inode_field / uid 1000", img)
	must(t, "debugfs", "-w", "-R", "set_inode_field / gid 1000", img)
	dev = strings.TrimSpace(must(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, img
}

// joinTestNetns makes a network namespace with a veth pair, host side
// hostAddr and eth0 inside with addr, and points the spec at it.
func joinTestNetns(t *testing.T, spec map[string]any, hostAddr, addr string) {
	t.Helper()
	const ns, veth = "govmm-test-ns", "govmm-t-veth"
	exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "link", "del", veth).Run()
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", veth).Run()
	})
	must(t, "ip", "netns", "add", ns)
	must(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	must(t, "ip", "addr", "add", hostAddr, "dev", veth)
	must(t, "ip", "link", "set", veth, "up")
	must(t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
	must(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	must(t, "ip", "-n", ns, "link", "set", "lo", "up")
	linux := spec["linux"].(map[string]any)
	nss := slices.DeleteFunc(linux["namespaces"].([]any), func(n any) bool { return n.(map[string]any)["type"] == "network" })
	linux["namespaces"] = append(nss, map[string]any{"type": "network", "path": "/var/run/netns/" + ns})
}

// testTap makes a tap with the host's address on it, removed at the end.
func testTap(t *testing.T, hostAddr string) string {
	t.Helper()
	const tap = "govmm-t-tap"
	exec.Command("ip", "link", "del", tap).Run()
	t.Cleanup(func() { exec.Command("ip", "link", "del", tap).Run() })
	must(t, "ip", "tuntap", "add", tap, "mode", "tap")
	must(t, "ip", "addr", "add", hostAddr, "dev", tap)
	must(t, "ip", "link", "set", tap, "up")
	return tap
}

// echo sends msg over TCP, half-closes, and returns what came back.
func echo(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// debugfsCat reads a file of an ext4 image that nothing has mounted.
func debugfsCat(t *testing.T, img, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, img).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
