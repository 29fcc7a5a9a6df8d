package main

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// A check is a parsed govmm.check= entry, ready to run.
type check func() result

// result is a check's verdict and the fields of its report line.
type result struct {
	ok     bool
	fields []report.Field
}

func kv(key string, value any) report.Field { return report.Field{Key: key, Value: fmt.Sprint(value)} }

func pass(fields ...report.Field) result { return result{ok: true, fields: fields} }

// failed reports err as the error field, and its errno name, if any, as errno.
func failed(err error, fields ...report.Field) result {
	fields = append(fields, kv("error", err))
	if name := errnoName(err); name != "" {
		fields = append(fields, kv("errno", name))
	}
	return result{fields: fields}
}

func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return ""
}

// runCheck parses and runs one govmm.check= entry, NAME or NAME=ARG. The
// report line is named after the whole entry, so that two disks' checks
// can be told apart.
func runCheck(spec string) report.Check {
	name := strings.Join(strings.Fields(spec), "_")
	c, err := parseCheck(spec)
	if err != nil {
		return report.Check{Name: name, Detail: report.FormatFields(kv("error", err))}
	}
	r := c()
	return report.Check{Name: name, OK: r.ok, Detail: report.FormatFields(r.fields...)}
}

// parseCheck maps a check's name to its code and parses its argument.
func parseCheck(spec string) (check, error) {
	name, arg, hasArg := strings.Cut(spec, "=")
	switch name {
	case "modules":
		return noArg(name, hasArg, func() result { return loadModules(nil) })
	case "rtc":
		return noArg(name, hasArg, checkRTC)
	case "random":
		return noArg(name, hasArg, checkRandom)
	case "entropy":
		return noArg(name, hasArg, checkEntropy)
	case "hvc":
		return noArg(name, hasArg, checkHVC)
	case "pci":
		return noArg(name, hasArg, checkPCI)
	case "kmsg":
		return noArg(name, hasArg, checkKmsg)
	case "disk":
		return parsed(arg, parseDisk)
	case "diskwrite":
		return parsed(arg, parseDiskWrite)
	case "diskro":
		return parsed(arg, parseDiskRO)
	case "records":
		return parsed(arg, parseRecords)
	case "ackrecords":
		return parsed(arg, parseAckRecords)
	case "soak":
		return parsed(arg, parseSoak)
	case "discard":
		return parsed(arg, parseDiscard)
	case "net":
		return parsed(arg, parseNet)
	case "tcpsend":
		return parsed(arg, parseTCPSend)
	case "tcprecv":
		return parsed(arg, parseTCPRecv)
	case "agent":
		return parsed(arg, parseAgent)
	case "hostile":
		return parsed(arg, parseHostile)
	}
	return nil, fmt.Errorf("no such check %q", name)
}

func noArg(name string, hasArg bool, c check) (check, error) {
	if hasArg {
		return nil, fmt.Errorf("check %s takes no argument", name)
	}
	return c, nil
}

type runner interface{ run() result }

func parsed[T runner](arg string, parse func(string) (T, error)) (check, error) {
	c, err := parse(arg)
	if err != nil {
		return nil, err
	}
	return c.run, nil
}
