package compare

import (
	"encoding/json"
	"strings"
	"testing"
)

// The checksum of a packet that carries its checksum sums to zero
// (RFC 1071), and the request is an echo request with our id and seq.
func TestEchoRequest(t *testing.T) {
	b := echoRequest(0x1234, 7)
	if len(b) != 64 || b[0] != 8 || b[1] != 0 {
		t.Fatalf("echo request % x", b)
	}
	if c := icmpChecksum(b); c != 0 {
		t.Errorf("checksum over the whole packet = %#x, want 0", c)
	}
	reply := append([]byte(nil), b...)
	reply[0] = 0
	if !isEchoReply(reply, 0x1234, 7) || isEchoReply(reply, 0x1234, 8) || isEchoReply(b, 0x1234, 7) {
		t.Error("isEchoReply does not match replies by type, id and seq")
	}
	// An odd length pads with a zero byte.
	if got, want := icmpChecksum([]byte{0x01, 0x02, 0x03}), ^uint16(0x0102+0x0300); got != want {
		t.Errorf("odd-length checksum %#x, want %#x", got, want)
	}
}

// The network bundle joins the compare namespace in place of the
// namespace runc spec asks to create, and keeps the others.
func TestJoinNetns(t *testing.T) {
	var cfg map[string]any
	json.Unmarshal([]byte(`{"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}]}}`), &cfg)
	joinNetns(cfg)
	b, _ := json.Marshal(cfg)
	want := `{"linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"path":"/var/run/netns/govmm-compare","type":"network"}]}}`
	if string(b) != want {
		t.Errorf("config %s\nwant   %s", b, want)
	}
	cfg = map[string]any{}
	joinNetns(cfg)
	if b, _ := json.Marshal(cfg); !strings.Contains(string(b), netnsPath) {
		t.Errorf("a config without linux: %s", b)
	}
}

// fio's terse lines, as fio 3.33 in the compare bundle prints them.
func TestFioResults(t *testing.T) {
	pad := strings.Repeat(";0", 80)
	out := []string{
		"ready",
		"3;fio-3.33;seqwrite;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;7407616;7400215;7226;1001" + pad,
		"3;fio-3.33;seqread;1;0;1575936;1574361;1537;1001" + pad,
		"3;fio-3.33;randread;2;0;65224;65158;16289;1001" + pad,
	}
	jobs, err := fioResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if w := jobs["seqwrite"]; w.writeKiBs != 7400215 || w.writeIOPS != 7226 {
		t.Errorf("seqwrite %+v", w)
	}
	if r := jobs["seqread"]; r.readKiBs != 1574361 || r.readIOPS != 1537 {
		t.Errorf("seqread %+v", r)
	}
	if r := jobs["randread"]; r.readIOPS != 16289 {
		t.Errorf("randread %+v", r)
	}
	if _, err := fioResults([]string{"3;fio-3.33;bad;0;5" + pad}); err == nil || !strings.Contains(err.Error(), "error 5") {
		t.Errorf("a job with an error: %v", err)
	}
}

// The scratch mount names the device as runc mounts it, read-write, and
// the device cgroup allows it, which crun needs to mount it.
func TestAddScratch(t *testing.T) {
	cfg := map[string]any{"mounts": []any{map[string]any{"destination": "/proc"}},
		"linux": map[string]any{"resources": map[string]any{"devices": []any{map[string]any{"allow": false, "access": "rwm"}}}}}
	addScratch("/dev/loop7", 7, 7)(cfg)
	b, _ := json.Marshal(cfg["mounts"])
	want := `[{"destination":"/proc"},{"destination":"/scratch","options":["rw","noatime"],"source":"/dev/loop7","type":"ext4"}]`
	if string(b) != want {
		t.Errorf("mounts %s\nwant   %s", b, want)
	}
	b, _ = json.Marshal(cfg["linux"])
	want = `{"resources":{"devices":[{"access":"rwm","allow":false},{"access":"rwm","allow":true,"major":7,"minor":7,"type":"b"}]}}`
	if string(b) != want {
		t.Errorf("linux %s\nwant  %s", b, want)
	}
	bare := map[string]any{}
	addScratch("/dev/loop0", 7, 0)(bare)
	if b, _ := json.Marshal(bare["linux"]); !strings.Contains(string(b), `"minor":0`) {
		t.Errorf("a config without linux.resources: %s", b)
	}
}
