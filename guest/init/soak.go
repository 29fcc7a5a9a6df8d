package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// soakCheck (soak=DEV:SEED:SECONDS:HOST:PORT) keeps a VM's disk and NIC
// busy for SECONDS, as many VMs do at once in the soak test: round after
// round it writes the MiB of the pattern for SEED+round at offset 0 of DEV,
// fsyncs it, reads it back, and sends the same MiB to HOST:PORT on one TCP
// connection, which it closes once the host has closed its side. It
// reports the rounds and the digest of all it sent, so that the host can
// check its image holds the last round's MiB and that it received every
// byte.
type soakCheck struct {
	dev        string
	seed, secs uint64
	host       netip.AddrPort
}

func parseSoak(arg string) (soakCheck, error) {
	p, err := splitArgs(arg, "DEV", "SEED", "SECONDS", "HOST", "PORT")
	if err != nil {
		return soakCheck{}, err
	}
	var c soakCheck
	if c.dev, err = parseDevice(p[0]); err != nil {
		return c, err
	}
	if c.seed, err = parseUint("SEED", p[1]); err != nil {
		return c, err
	}
	if c.secs, err = parseUint("SECONDS", p[2]); err == nil && (c.secs == 0 || c.secs > 3600) {
		err = fmt.Errorf("SECONDS %d: want 1 to 3600", c.secs)
	}
	if err != nil {
		return c, err
	}
	c.host, err = parseHostPort(p[3], p[4])
	return c, err
}

func (c soakCheck) run() result {
	const chunk = 1 << 20
	f, err := openForWriting(c.dev, chunk)
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	in, err := os.Open(c.dev) // openForWriting waited for it
	if err != nil {
		return failed(err)
	}
	defer in.Close()
	conn, err := tcpArgs{host: c.host}.dial()
	if err != nil {
		return failed(err)
	}
	defer conn.Close()
	sent := sha256.New()
	buf, back := make([]byte, chunk), make([]byte, chunk)
	end := time.Now().Add(time.Duration(c.secs) * time.Second)
	var rounds uint64
	for ; rounds == 0 || time.Now().Before(end); rounds++ {
		pattern.Fill(buf, c.seed+rounds, 0)
		if _, err := f.WriteAt(buf, 0); err != nil {
			return failed(fmt.Errorf("round %d: write: %w", rounds, err), kv("rounds", rounds))
		}
		if err := f.Sync(); err != nil {
			return failed(fmt.Errorf("round %d: fsync: %w", rounds, err), kv("rounds", rounds))
		}
		if _, err := in.ReadAt(back, 0); err != nil || !bytes.Equal(back, buf) {
			return failed(fmt.Errorf("round %d: read back what was written: %v", rounds, err), kv("rounds", rounds))
		}
		// dial's deadline bounds one transfer; a soak is many.
		if err := conn.SetDeadline(time.Now().Add(tcpTimeout)); err != nil {
			return failed(fmt.Errorf("round %d: %w", rounds, err), kv("rounds", rounds))
		}
		if _, err := conn.Write(buf); err != nil {
			return failed(fmt.Errorf("round %d: send to %v: %w", rounds, c.host, err), kv("rounds", rounds))
		}
		sent.Write(buf) //nolint:errcheck // hash.Hash.Write never fails
	}
	if err := closeAndWait(conn); err != nil {
		return failed(fmt.Errorf("%v: %w", c.host, err), kv("rounds", rounds))
	}
	return pass(kv("rounds", rounds), kv("seed", c.seed), kv("sent_sha256", hex.EncodeToString(sent.Sum(nil))))
}
