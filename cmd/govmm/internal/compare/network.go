package compare

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// The network measures run on the host against the instance, over the
// plumbing each kind of instance gets in practice: a veth pair into the
// container's network namespace, a tap for a VM's virtio NIC. Each side
// has its own /30; instances run one at a time, so one namespace and one
// tap serve every run.
const (
	netnsName = "govmm-compare"
	vethName  = "govmm-cmp-veth" // the host's end; eth0 in the namespace
	tapName   = "govmm-cmp-tap"
)

var (
	vethHostAddr  = netip.MustParsePrefix("10.254.199.1/30")
	containerAddr = netip.MustParsePrefix("10.254.199.2/30")
	tapHostAddr   = netip.MustParsePrefix("10.254.199.5/30")
	vmAddr        = netip.MustParsePrefix("10.254.199.6/30")
)

// NIC is the network a VM instance gets: a virtio NIC on Tap, given Addr
// by the guest's init. Containers get theirs from the bundle's network
// namespace and ignore it.
type NIC struct {
	Tap  string
	Addr netip.Prefix
}

// netnsPath is where `ip netns` keeps the namespace for runc to join.
var netnsPath = "/var/run/netns/" + netnsName

// setUpNetwork makes the namespace with its veth pair and the tap, with
// their addresses, and returns what removes them. Leftovers of an
// interrupted run are removed first.
func setUpNetwork() (func(), error) {
	cleanup := func() {
		ip("netns", "del", netnsName)
		ip("link", "del", vethName)
		ip("link", "del", tapName)
	}
	cleanup()
	for _, args := range [][]string{
		{"netns", "add", netnsName},
		{"link", "add", vethName, "type", "veth", "peer", "name", "eth0", "netns", netnsName},
		{"addr", "add", vethHostAddr.String(), "dev", vethName},
		{"link", "set", vethName, "up"},
		{"-n", netnsName, "addr", "add", containerAddr.String(), "dev", "eth0"},
		{"-n", netnsName, "link", "set", "eth0", "up"},
		{"-n", netnsName, "link", "set", "lo", "up"},
		{"tuntap", "add", tapName, "mode", "tap"},
		{"addr", "add", tapHostAddr.String(), "dev", tapName},
		{"link", "set", tapName, "up"},
	} {
		if err := ip(args...); err != nil {
			cleanup()
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	return cleanup, nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// joinNetns points the bundle's network namespace at the compare one, as
// a container engine does with the namespace it has plumbed.
func joinNetns(cfg map[string]any) {
	linux, _ := cfg["linux"].(map[string]any)
	if linux == nil {
		linux = map[string]any{}
		cfg["linux"] = linux
	}
	nss, _ := linux["namespaces"].([]any)
	nss = slices.DeleteFunc(nss, func(ns any) bool {
		m, _ := ns.(map[string]any)
		return m["type"] == "network"
	})
	linux["namespaces"] = append(nss, map[string]any{"type": "network", "path": netnsPath})
}

// iperf3 runs the host's iperf3 client against addr for a few seconds and
// returns the throughput the receiver saw, in Gbit/s; reverse has the
// instance send.
func iperf3(ctx context.Context, addr netip.Addr, reverse bool) (float64, error) {
	args := []string{"-c", addr.String(), "-t", "3", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	out, err := exec.CommandContext(ctx, "iperf3", args...).Output()
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		if err == nil {
			err = jerr
		}
		return 0, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3 %s: %s", strings.Join(args, " "), r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// pings is how many echo requests the round-trip measure sends, one at a
// time.
const pings = 200

// pingRTT sends ICMP echo requests to addr one after the other and
// returns the median round trip in µs: a request and its response
// through the instance's kernel and its plumbing, nothing of a program.
func pingRTT(addr netip.Addr) (float64, error) {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	defer c.Close()
	id := uint16(os.Getpid())
	dst := &net.IPAddr{IP: addr.AsSlice()}
	var rtts []float64
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= pings; seq++ {
		req := echoRequest(id, seq)
		t0 := time.Now()
		if _, err := c.WriteTo(req, dst); err != nil {
			return 0, fmt.Errorf("ping %v: %w", addr, err)
		}
		c.SetReadDeadline(t0.Add(2 * time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return 0, fmt.Errorf("ping %v: no reply to echo %d: %w", addr, seq, err)
			}
			if isEchoReply(buf[:n], id, seq) && from.String() == dst.String() {
				break
			}
		}
		rtts = append(rtts, float64(time.Since(t0))/float64(time.Microsecond))
	}
	s, ok := Summarize(rtts)
	if !ok {
		return 0, errors.New("ping: no round trips")
	}
	return s.Median, nil
}

// echoRequest is an ICMP echo request (RFC 792) with 56 bytes of data, as
// ping sends.
func echoRequest(id, seq uint16) []byte {
	b := make([]byte, 8+56)
	b[0] = 8 // echo request
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	binary.BigEndian.PutUint16(b[2:], icmpChecksum(b))
	return b
}

// isEchoReply: an echo reply to our request id and seq.
func isEchoReply(b []byte, id, seq uint16) bool {
	return len(b) >= 8 && b[0] == 0 && b[1] == 0 &&
		binary.BigEndian.Uint16(b[4:]) == id && binary.BigEndian.Uint16(b[6:]) == seq
}

// icmpChecksum is the Internet checksum (RFC 1071) of b, whose checksum
// field is zero.
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
