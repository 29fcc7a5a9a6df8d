package main

import (
	"time"

	"github.com/govmm/govmm/guest/report"
)

// checkRTC reads the clock the CMOS RTC set at boot: a guest without one
// starts in 1970.
func checkRTC() result {
	now := time.Now().UTC()
	since := readTrimmed("/sys/class/rtc/rtc0/since_epoch")
	return result{
		ok:     now.Year() >= 2024 && since != "",
		fields: []report.Field{kv("time", now.Format(time.RFC3339)), kv("since_epoch", since)},
	}
}
