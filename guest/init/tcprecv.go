package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// tcpRecvCheck (tcprecv=HOST:PORT:MIB) connects to the host, reads MIB MiB
// and closes; it reports their sha256. The time runs from connect to the
// last byte. The host is expected to send the pattern stream seeded with
// PORT, but any bytes do: the host compares digests.
type tcpRecvCheck struct{ tcpArgs }

func parseTCPRecv(arg string) (tcpRecvCheck, error) {
	a, err := parseTCP(arg)
	return tcpRecvCheck{a}, err
}

func (c tcpRecvCheck) run() result {
	conn, err := c.dial()
	if err != nil {
		return failed(err)
	}
	defer conn.Close()
	start := time.Now()
	n := int64(c.mib << 20)
	h := sha256.New()
	got, err := io.CopyBuffer(h, io.LimitReader(conn, n), make([]byte, 1<<20))
	elapsed := time.Since(start)
	if err == nil && got < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return failed(fmt.Errorf("receive from %v: %w", c.host, err), kv("bytes", got))
	}
	return pass(kv("bytes", got), kv("sha256", hex.EncodeToString(h.Sum(nil))),
		kv("seconds", fmt.Sprintf("%.3f", elapsed.Seconds())), kv("mib_s", mibPerSecond(uint64(got), elapsed)))
}
