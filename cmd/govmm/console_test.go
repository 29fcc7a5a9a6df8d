package main

import (
	"bytes"
	"testing"
)

func TestEscaper(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		guest  string
		action escapeAction
	}{
		{"plain text passes", []string{"ls -l\r"}, "ls -l\r", actionNone},
		{"ctrl-c reaches the guest", []string{"\x03"}, "\x03", actionNone},
		{"ctrl-a x quits", []string{"ab\x01xcd"}, "ab", actionQuit},
		{"escape split across reads", []string{"a\x01", "x"}, "a", actionQuit},
		{"ctrl-a a sends ctrl-a", []string{"\x01a"}, "\x01", actionNone},
		{"ctrl-a ctrl-a sends ctrl-a", []string{"\x01\x01z"}, "\x01z", actionNone},
		{"ctrl-a h shows help", []string{"\x01h"}, "", actionHelp},
		{"unknown escape is dropped", []string{"\x01qz"}, "z", actionNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e escaper
			var guest []byte
			action := actionNone
			for _, c := range tc.chunks {
				out, a := e.feed([]byte(c))
				guest = append(guest, out...)
				if a != actionNone {
					action = a
				}
			}
			if !bytes.Equal(guest, []byte(tc.guest)) || action != tc.action {
				t.Errorf("guest got %q action %d; want %q action %d", guest, action, tc.guest, tc.action)
			}
		})
	}
}
