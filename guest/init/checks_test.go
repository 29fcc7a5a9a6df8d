package main

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseChecksAcceptsTheDocumentedSyntax(t *testing.T) {
	addr := netip.MustParseAddrPort("192.168.100.1:5001")
	for _, tc := range []struct {
		spec string
		want runner
	}{
		{"disk=/dev/vda", diskCheck{"/dev/vda"}},
		{"diskwrite=/dev/vdb:18446744073709551615:64", diskWriteCheck{"/dev/vdb", 1<<64 - 1, 64}},
		{"diskro=/dev/vdc", diskROCheck{"/dev/vdc"}},
		{"records=/dev/vdb:9:1024", recordsCheck{"/dev/vdb", 9, 1024}},
		{"discard=/dev/vda:1048576:4194304", discardCheck{"/dev/vda", 1 << 20, 4 << 20}},
		{"net=eth0:192.168.100.2/24", netCheck{"eth0", netip.MustParsePrefix("192.168.100.2/24")}},
		{"tcpsend=192.168.100.1:5001:64", tcpSendCheck{tcpArgs{addr, 64}}},
		{"tcprecv=192.168.100.1:5001:1", tcpRecvCheck{tcpArgs{addr, 1}}},
		{"agent=192.168.100.1:5001", agentCheck{addr}},
		{"soak=/dev/vda:3:60:192.168.100.1:5001", soakCheck{"/dev/vda", 3, 60, addr}},
	} {
		name, arg, _ := strings.Cut(tc.spec, "=")
		got, err := parseArgs(name, arg)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
		if _, err := parseCheck(tc.spec); err != nil {
			t.Errorf("parseCheck(%q): %v", tc.spec, err)
		}
	}
	for _, spec := range []string{"modules", "rtc", "random", "entropy", "hvc", "pci"} {
		if _, err := parseCheck(spec); err != nil {
			t.Errorf("parseCheck(%q): %v", spec, err)
		}
	}
	if got := (tcpArgs{addr, 1}).seed(); got != 5001 {
		t.Errorf("tcp pattern seed = %d, want the port", got)
	}
}

// parseArgs is parseCheck's argument parsing, keeping the parsed value.
func parseArgs(name, arg string) (runner, error) {
	switch name {
	case "disk":
		return parseDisk(arg)
	case "diskwrite":
		return parseDiskWrite(arg)
	case "diskro":
		return parseDiskRO(arg)
	case "records":
		return parseRecords(arg)
	case "discard":
		return parseDiscard(arg)
	case "net":
		return parseNet(arg)
	case "tcpsend":
		return parseTCPSend(arg)
	case "tcprecv":
		return parseTCPRecv(arg)
	case "agent":
		return parseAgent(arg)
	case "soak":
		return parseSoak(arg)
	}
	return nil, nil
}

func TestParseChecksRejectsWithAReason(t *testing.T) {
	for spec, reason := range map[string]string{
		"nosuch":                                     `no such check "nosuch"`,
		"rtc=1":                                      "takes no argument",
		"hvc=":                                       "takes no argument",
		"disk":                                       `device "": want /dev/NAME`,
		"disk=vda":                                   `device "vda"`,
		"disk=/dev/../etc/passwd":                    "lower-case letters and digits",
		"disk=/dev/vda:1":                            `device "/dev/vda:1"`,
		"diskwrite=/dev/vda:1":                       "want DEV:SEED:MIB",
		"diskwrite=/dev/vda:-1:1":                    `SEED "-1"`,
		"diskwrite=/dev/vda:0x10:1":                  `SEED "0x10"`,
		"diskwrite=/dev/vda:1:0":                     "MIB 0: want 1 to 65536",
		"diskwrite=/dev/vda:1:65537":                 "MIB 65537",
		"diskwrite=/dev/vda:1:+4":                    `MIB "+4"`,
		"records=/dev/vda:1":                         "want DEV:SEED:N",
		"soak=/dev/vda:1:60":                         "want DEV:SEED:SECONDS:HOST:PORT",
		"soak=/dev/vda:1:0:10.0.0.1:1":               "SECONDS 0: want 1 to 3600",
		"soak=/dev/vda:1:9:10.0.0.1:0":               `port "0"`,
		"records=/dev/vda:1:0":                       "N 0: want 1 to 1024",
		"records=/dev/vda:1:1025":                    "N 1025",
		"diskwrite=/dev/vda:18446744073709551616:1":  "below 2^64",
		"diskro=/dev/VDA":                            "lower-case",
		"discard=/dev/vda:0":                         "want DEV:OFF:LEN",
		"discard=/dev/vda:1:512":                     "multiples of 512",
		"discard=/dev/vda:0:0":                       "LEN 0",
		"discard=/dev/vda:18446744073709551104:1024": "overflows",
		"net=eth0":                                   "want IFACE:ADDR/PREFIX",
		"net=eth0:192.168.100.2":                     "want IPv4 ADDR/PREFIX",
		"net=eth0:fd00::2/64":                        "want IFACE:ADDR/PREFIX",
		"net=eth0:10.0.0.2/8/8":                      "want IPv4 ADDR/PREFIX",
		"net=eth0:10.0.0.2/0":                        "PREFIX 1 to 32",
		"net=eth0:10.0.0.2/33":                       "want IPv4",
		"net=a-very-long-name0:10.0.0.2/8":           "1 to 15",
		"net=eth/0:10.0.0.2/8":                       "interface",
		"tcpsend=host:5001:1":                        `host "host": want an IPv4 address`,
		"tcpsend=10.0.0.1:0:1":                       `port "0"`,
		"tcpsend=10.0.0.1:65536:1":                   `port "65536"`,
		"tcprecv=10.0.0.1:5001":                      "want HOST:PORT:MIB",
		"tcprecv=[::1]:5001:1":                       "want HOST:PORT:MIB",
		"tcprecv=10.0.0.1:5001:0":                    "MIB 0",
	} {
		if _, err := parseCheck(spec); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("parseCheck(%q) = %v, want an error with %q", spec, err, reason)
		}
	}
}

func TestRunCheckReportsParseErrorsAsFields(t *testing.T) {
	c := runCheck("diskwrite=/dev/vda:x:1")
	if c.OK || c.Name != "diskwrite=/dev/vda:x:1" {
		t.Errorf("runCheck = %+v", c)
	}
	if msg, ok := c.Field("error"); !ok || !strings.Contains(msg, `SEED "x"`) {
		t.Errorf("error field %q, %v in %q", msg, ok, c.Detail)
	}
}

// FuzzParseCheck: the kernel command line is user input; parsing it must
// never panic, and what it accepts is well-formed.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{"disk=/dev/vda", "diskwrite=/dev/vda:1:64", "discard=/dev/vda:0:512", "net=eth0:10.0.0.2/24",
		"tcpsend=10.0.0.1:5001:64", "tcprecv=10.0.0.1:1:1", "hvc", "rtc=", "x=y=z", "disk=/dev/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		name, arg, _ := strings.Cut(spec, "=")
		r, err := parseArgs(name, arg)
		if err != nil || r == nil {
			return
		}
		switch c := r.(type) {
		case discardCheck:
			if c.length == 0 || c.off%512 != 0 || c.off+c.length < c.off {
				t.Fatalf("%q accepted as %+v", spec, c)
			}
		case diskWriteCheck:
			if c.mib == 0 || c.mib > maxMiB || !strings.HasPrefix(c.dev, "/dev/") {
				t.Fatalf("%q accepted as %+v", spec, c)
			}
		case recordsCheck:
			if c.n == 0 || c.n > maxRecords || !strings.HasPrefix(c.dev, "/dev/") {
				t.Fatalf("%q accepted as %+v", spec, c)
			}
		case tcpSendCheck:
			if c.host.Port() == 0 || !c.host.Addr().Is4() {
				t.Fatalf("%q accepted as %+v", spec, c)
			}
		}
	})
}
