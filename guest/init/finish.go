package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// finish ends the guest; PID 1 must never return.
func finish(action string) {
	unix.Sync()
	switch action {
	case "reboot":
		reboot(unix.LINUX_REBOOT_CMD_RESTART)
	case "panic":
		// sysrq c makes the kernel panic (Documentation/admin-guide/sysrq.rst).
		if err := os.WriteFile("/proc/sys/kernel/sysrq", []byte("1"), 0); err != nil {
			fmt.Println(report.Check{Name: "panic", Detail: err.Error()}.Line())
		}
		if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
			fmt.Println(report.Check{Name: "panic", Detail: err.Error()}.Line())
		}
	case "shell":
		shell()
	case "hang":
		select {}
	case "flood":
		flood()
	}
	reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// flood writes numbered lines to the console without pause, for ever: a
// guest that prints more than the host reads, which must not keep govmm
// from stopping it.
func flood() {
	line := []byte("flood 0000000000 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
	for i := uint64(0); ; i++ {
		strconv.AppendUint(line[:6], i%1e10, 10) // the number overwrites, the tail stays
		os.Stdout.Write(line)                    //nolint:errcheck // nobody to tell
	}
}

func reboot(cmd int) {
	err := unix.Reboot(cmd)
	fmt.Println(report.Check{Name: "init", Detail: fmt.Sprintf("reboot(%#x): %v", cmd, err)}.Line())
	select {}
}

// shell runs busybox's shell on the console as a session leader with the
// console as its controlling terminal, so job control and Ctrl-C work.
func shell() {
	cmd := exec.Command("/bin/sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=linux", "PS1=govmm# "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	// busybox's poweroff and reboot signal PID 1 as they would its own init.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	go func() {
		s := <-sigs
		unix.Sync()
		if s == syscall.SIGTERM {
			reboot(unix.LINUX_REBOOT_CMD_RESTART)
		}
		reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	if err := cmd.Run(); err != nil {
		fmt.Println(report.Check{Name: "shell", Detail: err.Error()}.Line())
	}
}
