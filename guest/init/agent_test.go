package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestAgentCommandsMoveWhatTheyAreAsked(t *testing.T) {
	var out bytes.Buffer
	in := bufio.NewReader(strings.NewReader("abc" + strings.Repeat("x", 1<<20) + "rest"))
	if reply, err := agentCommand([]string{"echo", "3"}, in, &out); err != nil || reply != "ok" || out.String() != "abc" {
		t.Fatalf("echo 3: reply %q, %v, echoed %q; want ok and abc", reply, err, out.String())
	}
	if reply, err := agentCommand([]string{"recv", "1"}, in, &out); err != nil || !strings.HasPrefix(reply, "ok ns=") {
		t.Fatalf("recv 1: reply %q, %v", reply, err)
	}
	if rest, _ := in.ReadString(0); rest != "rest" {
		t.Errorf("recv 1 consumed the wrong amount: %q left, want \"rest\"", rest)
	}
	out.Reset()
	if reply, err := agentCommand([]string{"send", "2"}, in, &out); err != nil || reply != "" || out.Len() != 2<<20 {
		t.Errorf("send 2: reply %q, %v, %d bytes; want no reply and 2 MiB", reply, err, out.Len())
	}
}

func TestAgentCommandsRejectBadArguments(t *testing.T) {
	for cmd, reason := range map[string]string{
		"":                          "empty command",
		"format /dev/vda":           `unknown command "format"`,
		"read /dev/vda":             "read wants DEV MIB",
		"read /etc/passwd 1":        "want /dev/NAME",
		"write /dev/vda 0":          "MIB 0",
		"randread /dev/vda 10":      "randread wants DEV OPS DEPTH",
		"randread /dev/vda 0 1":     `OPS "0"`,
		"randread /dev/vda 10 1000": `DEPTH "1000"`,
		"send x":                    `MIB "x"`,
		"echo 0":                    `N "0"`,
	} {
		_, err := agentCommand(strings.Fields(cmd), bufio.NewReader(strings.NewReader("")), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: error %v, want one containing %q", cmd, err, reason)
		}
	}
}
