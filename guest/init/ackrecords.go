package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// maxAckRecords bounds the ackrecords check to 64 MiB of image.
const maxAckRecords = 16384

// ackRecordsCheck (ackrecords=DEV:SEED:FIRST:COUNT:HOST:PORT) writes
// records FIRST to FIRST+COUNT-1 as records= does (record i is bytes
// [i*4096, (i+1)*4096) of the pattern stream for SEED, at the same offset
// of DEV), fsyncs each and, once its fsync has returned, sends "i\n" to
// HOST:PORT. The host may SIGKILL govmm at any moment and expect every
// record it was told of in the image; the next boot goes on from the
// record after the last one told. Acknowledgements go over TCP, not the
// serial console, so that they keep up with the writes.
type ackRecordsCheck struct {
	dev                string
	seed, first, count uint64
	host               netip.AddrPort
}

func parseAckRecords(arg string) (ackRecordsCheck, error) {
	names := []string{"DEV", "SEED", "FIRST", "COUNT", "HOST", "PORT"}
	p, err := splitArgs(arg, names...)
	if err != nil {
		return ackRecordsCheck{}, err
	}
	var c ackRecordsCheck
	if c.dev, err = parseDevice(p[0]); err != nil {
		return c, err
	}
	for i, n := range []*uint64{&c.seed, &c.first, &c.count} {
		if *n, err = parseUint(names[1+i], p[1+i]); err != nil {
			return c, err
		}
	}
	if c.count == 0 || c.first >= maxAckRecords || c.count > maxAckRecords-c.first {
		return c, fmt.Errorf("FIRST %d, COUNT %d: want COUNT at least 1 and FIRST+COUNT at most %d", c.first, c.count, maxAckRecords)
	}
	c.host, err = parseHostPort(p[4], p[5])
	return c, err
}

func (c ackRecordsCheck) run() result {
	end := c.first + c.count
	f, err := openForWriting(c.dev, end*recordSize)
	if err != nil {
		return failed(err, kv("acknowledged", 0))
	}
	defer f.Close()
	conn, err := tcpArgs{host: c.host}.dial()
	if err != nil {
		return failed(err, kv("acknowledged", 0))
	}
	defer conn.Close()
	buf, ack := make([]byte, recordSize), make([]byte, 0, 21)
	for i := c.first; i < end; i++ {
		off := i * recordSize
		pattern.Fill(buf, c.seed, off)
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			return failed(fmt.Errorf("write record %d: %w", i, err), kv("acknowledged", i-c.first))
		}
		if err := f.Sync(); err != nil {
			return failed(fmt.Errorf("fsync record %d: %w", i, err), kv("acknowledged", i-c.first))
		}
		// dial's deadline bounds one transfer; this is many.
		if err := conn.SetDeadline(time.Now().Add(tcpTimeout)); err != nil {
			return failed(err, kv("acknowledged", i-c.first))
		}
		if _, err := conn.Write(append(strconv.AppendUint(ack[:0], i, 10), '\n')); err != nil {
			return failed(fmt.Errorf("acknowledge record %d to %v: %w", i, c.host, err), kv("acknowledged", i-c.first))
		}
	}
	if err := conn.CloseWrite(); err != nil {
		return failed(fmt.Errorf("close the stream to %v: %w", c.host, err), kv("acknowledged", c.count))
	}
	return pass(kv("acknowledged", c.count), kv("seed", c.seed), kv("record_bytes", recordSize))
}
