package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// tcpSendCheck (tcpsend=HOST:PORT:MIB) connects to the host, sends the
// first MIB MiB of the pattern stream seeded with PORT, shuts its side
// down and waits for the host to close: it passes once the host has
// taken everything. The time runs from connect to the host's close.
type tcpSendCheck struct{ tcpArgs }

func parseTCPSend(arg string) (tcpSendCheck, error) {
	a, err := parseTCP(arg)
	return tcpSendCheck{a}, err
}

func (c tcpSendCheck) run() result {
	conn, err := c.dial()
	if err != nil {
		return failed(err)
	}
	defer conn.Close()
	start := time.Now()
	n := c.mib << 20
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := uint64(0); off < n; off += uint64(len(buf)) {
		pattern.Fill(buf, c.seed(), off)
		h.Write(buf) //nolint:errcheck // hash.Hash.Write never fails
		if _, err := conn.Write(buf); err != nil {
			return failed(fmt.Errorf("send to %v: %w", c.host, err), kv("sent", off))
		}
	}
	if err := closeAndWait(conn); err != nil {
		return failed(fmt.Errorf("%v: %w", c.host, err), kv("sent", n))
	}
	elapsed := time.Since(start)
	return pass(kv("bytes", n), kv("sha256", hex.EncodeToString(h.Sum(nil))), kv("seed", c.seed()),
		kv("seconds", fmt.Sprintf("%.3f", elapsed.Seconds())), kv("mib_s", mibPerSecond(n, elapsed)))
}
