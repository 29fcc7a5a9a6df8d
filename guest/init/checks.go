package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// checks maps the names govmm.check= accepts to their code.
var checks = map[string]func() (bool, string){
	"modules": loadModules,
	"rtc":     checkRTC,
	"random":  checkRandom,
}

func runCheck(name string) report.Check {
	f, ok := checks[name]
	if !ok {
		return report.Check{Name: name, Detail: "no such check"}
	}
	passed, detail := f()
	return report.Check{Name: name, OK: passed, Detail: detail}
}

// modulesList names the initramfs's kernel modules in load order.
const modulesList = "/etc/govmm/modules"

// loadModules loads the kernel modules shipped in the initramfs.
func loadModules() (bool, string) {
	list, err := os.ReadFile(modulesList)
	if err != nil {
		return false, err.Error()
	}
	var loaded, failed []string
	for _, name := range strings.Fields(string(list)) {
		if err := loadModule(filepath.Join("/lib/modules", name+".ko")); err != nil {
			failed = append(failed, name+": "+err.Error())
		} else {
			loaded = append(loaded, name)
		}
	}
	if len(failed) > 0 {
		return false, strings.Join(failed, "; ")
	}
	return true, fmt.Sprintf("loaded %d: %s", len(loaded), strings.Join(loaded, " "))
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// checkRTC reads the clock the CMOS RTC set at boot: a guest without one
// starts in 1970.
func checkRTC() (bool, string) {
	now := time.Now().UTC()
	since := readTrimmed("/sys/class/rtc/rtc0/since_epoch")
	return now.Year() >= 2024 && since != "", fmt.Sprintf("time %s rtc0 since_epoch %q", now.Format(time.RFC3339), since)
}

// checkRandom asks for random bytes without blocking.
func checkRandom() (bool, string) {
	b := make([]byte, 16)
	n, err := unix.Getrandom(b, unix.GRND_NONBLOCK)
	if err != nil {
		return false, "getrandom: " + err.Error()
	}
	return n == len(b), fmt.Sprintf("%d bytes, entropy_avail %s", n, readTrimmed("/proc/sys/kernel/random/entropy_avail"))
}
