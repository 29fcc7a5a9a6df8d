package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// checkKmsg prints the kernel's log to the console, one "kmsg: [SECONDS]
// MESSAGE" line a record, whatever the console's log level held back
// (quiet). It is for measuring where a boot spends the guest's time, with
// initcall_debug on the command line, without the console's cost in the
// timestamps.
func checkKmsg() result {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return failed(fmt.Errorf("open /dev/kmsg: %w", err))
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192) // a record is at most 8 KiB (CONSOLE_EXT_LOG_MAX)
	lines := 0
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return pass(kv("lines", lines))
		case errors.Is(err, unix.EPIPE), errors.Is(err, unix.EINTR):
			continue // records overwritten before we read them; go on with the next
		case err != nil:
			return failed(err, kv("lines", lines))
		}
		if line, ok := kmsgLine(string(buf[:n])); ok {
			fmt.Println(line)
			lines++
		}
	}
}

// kmsgLine turns a /dev/kmsg record, "PRIO,SEQ,MICROSECONDS,FLAGS;TEXT\n"
// followed by continuation lines, into "kmsg: [SECONDS] TEXT".
func kmsgLine(record string) (string, bool) {
	head, text, ok := strings.Cut(record, ";")
	if !ok {
		return "", false
	}
	text, _, _ = strings.Cut(text, "\n")
	fields := strings.Split(head, ",")
	if len(fields) < 3 {
		return "", false
	}
	us, err := strconv.ParseUint(fields[2], 10, 64)
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("kmsg: [%d.%06d] %s", us/1e6, us%1e6, text), true
}
