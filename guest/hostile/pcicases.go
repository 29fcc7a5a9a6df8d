package hostile

import (
	"fmt"

	"github.com/govmm/govmm/guest/report"
)

// barMoveCase moves the spare disk's BAR 0 to addr, pokes the old place
// through the stale mapping, and moves it back; the disk must work again
// afterwards (a request completes).
func barMoveCase(addr func(e *env) uint64) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		d := e.blk
		if err := d.reset(); err != nil {
			return nil, err
		}
		to := addr(e)
		if err := d.moveBAR(to); err != nil {
			return nil, err
		}
		d.setStatus(stAck)                   // lands nowhere, or in RAM
		stale := d.rd(d.common+regStatus, 1) // the old address has nothing now
		if err := d.moveBAR(d.barAddr); err != nil {
			return nil, err
		}
		fields, err := e.onQueue(targets[1], func(e *env, v *vq) error { return e.blkRequest(v, blkIn, 0, 512) })
		fields = append(fields, kv("moved_to", fmt.Sprintf("%#x", to)), kv("stale_read", stale))
		if err == nil && fields[2].Value != "1" {
			err = fmt.Errorf("the disk did not serve a request after its BAR came back: %v", fields)
		}
		return fields, err
	}
}

// barSizingCase sizes BAR 0 with every width, writes zeros and a
// misaligned address, and restores it.
func barSizingCase(e *env) ([]report.Field, error) {
	d := e.blk
	var sizes []uint32
	for _, n := range []int{1, 2, 4} {
		for off := 0; off < 4; off += n {
			if err := d.cfgWrite(regBAR0+off, n, 0xffffffff); err != nil {
				return nil, err
			}
		}
		v, err := d.cfgRead(regBAR0, 4)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, v)
		for _, w := range []uint32{0, 0x12345, uint32(d.barAddr) + 0x10} {
			if err := d.cfgWrite(regBAR0, 4, w); err != nil {
				return nil, err
			}
		}
	}
	for i := 1; i < 6; i++ { // the BARs that do not exist
		if err := d.cfgWrite(regBAR0+4*i, 4, 0xffffffff); err != nil {
			return nil, err
		}
	}
	return []report.Field{kv("sized", fmt.Sprintf("%#x", sizes))}, d.moveBAR(d.barAddr)
}

// configWriteCase writes every byte, word and dword of the device's
// configuration header and capabilities with all-ones, zeros and a
// pattern, then restores the BAR and command register and checks the
// device still serves requests.
func configWriteCase(t target) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		d := t.dev(e)
		if err := d.reset(); err != nil {
			return nil, err
		}
		for _, val := range []uint32{0xffffffff, 0, 0x5a5aa5a5} {
			for _, n := range []int{1, 2, 4} {
				for off := 0; off < 256; off += n {
					if off == regCommand && val != 0 {
						continue // keep memory decoding off the spare's own sweep
					}
					if err := d.cfgWrite(off, n, val); err != nil {
						return nil, err
					}
				}
			}
		}
		if err := d.restoreConfig(); err != nil {
			return nil, err
		}
		return e.onQueue(t, func(e *env, v *vq) error {
			_, err := e.fillValid(t, v, 1)
			return err
		})
	}
}

// configReadCase reads, through configuration mechanism #1, the vendor
// ID of every device number and function on bus 0, and of the functions
// that exist every register with every width, at every offset of the
// data port and with widths that do not fit there.
func configReadCase(e *env) ([]report.Field, error) {
	var sum uint64
	err := withPorts(func() error {
		for dev := 0; dev < 32; dev++ {
			for fn := 0; fn < 8; fn++ {
				base := 1<<31 | uint32(dev)<<11 | uint32(fn)<<8
				outl(0xcf8, base)
				if inl(0xcfc)&0xffff == 0xffff {
					continue
				}
				for reg := uint32(0); reg < 256; reg += 4 {
					for _, a := range []struct{ off, n int }{{0, 4}, {0, 2}, {2, 2}, {0, 1}, {1, 1}, {3, 1}, {1, 2}, {3, 2}, {1, 4}, {2, 4}} {
						outl(0xcf8, base|reg)
						sum += uint64(portIn(uint16(0xcfc+a.off), a.n))
					}
				}
			}
		}
		outl(0xcf8, 0x7fffff00) // enable bit clear
		sum += uint64(inl(0xcfc))
		outl(0xcf8, 0xffffffff) // reserved bits and bus 255
		sum += uint64(inl(0xcfc))
		outw(0xcf8, 0xffff) // not a dword: no latch
		outl(0xcf8, 0)
		return nil
	})
	return []report.Field{kv("sum", sum)}, err
}

// configBadWriteCase writes the spare's registers through the data port
// with widths that do not fit, and functions and buses that do not exist.
func configBadWriteCase(e *env) ([]report.Field, error) {
	f := e.blk.fn
	err := withPorts(func() error {
		for reg := 0; reg < 256; reg += 4 {
			for _, a := range []struct{ off, n int }{{1, 2}, {3, 2}, {1, 4}, {2, 4}, {3, 4}} {
				outl(0xcf8, f.cfgAddr(reg))
				portOut(uint16(0xcfc+a.off), a.n, 0xffffffff)
			}
			for _, other := range []uint32{1 << 16, 255 << 16, 7 << 8, 31 << 11} {
				outl(0xcf8, 1<<31|other|uint32(reg))
				outl(0xcfc, 0xffffffff)
			}
		}
		outl(0xcf8, 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return nil, e.blk.restoreConfig()
}

// configAddressFloodCase writes CONFIG_ADDRESS (0xCF8) over and over
// without reading, more times than KVM's coalesced ring holds (169), with
// the address of a function that does not exist, then the spare disk's ID
// register: the read of 0xCFC after each burst must see the spare's vendor
// and device, as sysfs does, so the VMM applied every write and in order.
func configAddressFloodCase(e *env) ([]report.Field, error) {
	f := e.blk.fn
	want, err := f.cfgRead(0, 4)
	if err != nil {
		return nil, err
	}
	const nowhere = 1<<31 | 31<<11 | 7<<8 // bus 0, slot 31, function 7: empty
	var got []uint32
	err = withPorts(func() error {
		for _, burst := range []int{400, 170, 169, 3, 1} {
			for i := 1; i < burst; i++ {
				outl(0xcf8, nowhere|uint32(i%64)*4)
			}
			outl(0xcf8, f.cfgAddr(0))
			got = append(got, inl(0xcfc))
		}
		outl(0xcf8, 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	fields := []report.Field{kv("id", fmt.Sprintf("%#x", want)), kv("read", fmt.Sprintf("%#x", got))}
	for _, g := range got {
		if g != want {
			return fields, fmt.Errorf("0xcfc read %#x after a burst of CONFIG_ADDRESS writes, want %s's ID %#x", g, f.name, want)
		}
	}
	return fields, nil
}

// restoreConfig puts back what a sweep may have changed in the header:
// BAR 0 where the kernel put it, and the command register as open set it.
func (d *dev) restoreConfig() error {
	if err := d.moveBAR(d.barAddr); err != nil {
		return err
	}
	return d.cfgWrite(regCommand, 2, cmdMemory|cmdBusMaster|cmdINTxDisable)
}

// moveBAR writes BAR 0, the upper half last for a 64-bit BAR: that write
// is the one that moves it, as with Linux's own order.
func (d *dev) moveBAR(addr uint64) error {
	if err := d.cfgWrite(regBAR0, 4, uint32(addr)); err != nil || !d.bar64 {
		return err
	}
	return d.cfgWrite(regBAR0+4, 4, uint32(addr>>32))
}

// pciCfgWindowCase uses the VIRTIO_PCI_CAP_PCI_CFG window (virtio 1.2
// §4.1.4.9) with a BAR that does not exist, offsets past BAR 0 and
// lengths that are not 1, 2 or 4, then to reset the device.
func pciCfgWindowCase(e *env) ([]report.Field, error) {
	d := e.blk
	c := d.pciCfgCap
	if c == 0 {
		return nil, fmt.Errorf("%s has no PCI configuration access capability", d.name)
	}
	var sum uint64
	for _, w := range []struct {
		bar    uint32
		off, n uint32
	}{{5, 0, 4}, {0xff, 0, 4}, {0, 0xfffffffc, 4}, {0, 0x7ffe, 4}, {0, 0, 3}, {0, 0, 0}, {0, 0, 0xffffffff}, {0, 1, 2}, {0, regStatus, 1}} {
		for _, reg := range []struct {
			off, n int
			v      uint32
		}{{c + 4, 1, w.bar}, {c + 8, 4, w.off}, {c + 12, 4, w.n}} {
			if err := d.cfgWrite(reg.off, reg.n, reg.v); err != nil {
				return nil, err
			}
		}
		for _, n := range []int{1, 2, 4} {
			v, err := d.cfgRead(c+16, n)
			if err != nil {
				return nil, err
			}
			sum += uint64(v)
			if err := d.cfgWrite(c+16, n, 0); err != nil { // status 0 at the last one: a reset
				return nil, err
			}
		}
	}
	return []report.Field{kv("sum", sum)}, d.reset()
}

// msixVectorCase assigns vectors past the table and uses the device.
func msixVectorCase(e *env) ([]report.Field, error) {
	return e.onQueue(targets[1], func(e *env, v *vq) error {
		d := v.d
		if err := d.cfgWrite(d.msixCap+2, 2, 0x8000); err != nil { // MSI-X enable
			return err
		}
		for _, vec := range []uint64{uint64(d.msixVectors), 0x7ff, 0xfffe} {
			d.wr(d.common+regConfigVector, 2, vec)
			d.selectQueue(v.q)
			d.wr(d.common+regQueueVector, 2, vec)
		}
		err := e.blkRequest(v, blkIn, 0, 512)
		v.kick()
		v.waitUsed(v.availIdx, usedWait)
		if err := d.cfgWrite(d.msixCap+2, 2, 0); err != nil {
			return err
		}
		return err
	})
}

// msixTableCase writes and reads the MSI-X table and PBA with every
// width at every offset while the function is masked, and past their
// ends, then restores the table.
func msixTableCase(e *env) ([]report.Field, error) {
	d := e.blk
	if d.msixCap == 0 {
		return nil, fmt.Errorf("%s has no MSI-X", d.name)
	}
	if err := d.cfgWrite(d.msixCap+2, 2, 0xc000); err != nil { // enable, function masked
		return nil, err
	}
	var sum uint64
	tableLen := 16 * d.msixVectors
	for _, n := range []int{1, 2, 4, 8} {
		for off := -8; off < tableLen+64; off++ {
			d.wr(d.msixTable+off, n, 0xffffffffffffffff)
			sum += d.rd(d.msixTable+off, n)
			d.wr(d.msixPBA+off, n, 0xffffffffffffffff)
			sum += d.rd(d.msixPBA+off, n)
		}
	}
	for i := 0; i < d.msixVectors; i++ { // masked, no address: as after reset
		d.wr(d.msixTable+16*i, 8, 0)
		d.wr(d.msixTable+16*i+8, 4, 0)
		d.wr(d.msixTable+16*i+12, 4, 1)
	}
	return []report.Field{kv("sum", sum)}, d.cfgWrite(d.msixCap+2, 2, 0)
}

// barWidthCase reads the first 256 bytes of every structure in BAR 0,
// and its last 256, with every width at every offset, and writes every
// width at every offset of the common and device configuration.
func barWidthCase(t target) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		d := t.dev(e)
		var sum uint64
		for _, n := range []int{1, 2, 4, 8} {
			for _, base := range []int{d.common, d.isr, d.devcfg, d.notify, d.msixTable, d.msixPBA, len(d.bar) - 0x100} {
				for off := base; off < base+0x100; off++ {
					sum += d.rd(off, n)
				}
			}
			for _, base := range []int{d.common, d.devcfg} {
				for off := base; off < base+0x100; off++ {
					d.wr(off, n, 0xffffffffffffffff)
					d.wr(off, n, 0)
				}
			}
		}
		return []report.Field{kv("sum", sum)}, d.reset()
	}
}

// Ports that the guest's own kernel needs as they are: the PIC, PIT and
// speaker, i8042, CMOS, the fast reset at 0x92, COM1, ELCR, the ACPI
// sleep and reset registers and configuration mechanism #1 (touched by
// the other cases). Everything else is fair game.
var keepPorts = [][2]uint16{
	{0x20, 0x21}, {0x40, 0x43}, {0x60, 0x64}, {0x70, 0x71}, {0x92, 0x92}, {0xa0, 0xa1},
	{0x3f8, 0x3ff}, {0x4d0, 0x4d1}, {0x600, 0x602}, {0xcf8, 0xcff},
}

func touchesKept(port uint16, n int, readOnly bool) bool {
	for _, r := range keepPorts {
		if readOnly && r[0] != 0x3f8 {
			continue // reading is harmless but for the UART's interrupt state
		}
		if int(port)+n > int(r[0]) && port <= r[1] {
			return true
		}
	}
	return false
}

// portSweepCase reads (or writes all-ones then zeros) every I/O port, but
// those in keepPorts, a byte at a time; and with 2 and 4 bytes every port
// below 0x1000 and, above, those that straddle a 256-port boundary (each
// access is a VM exit, and the sandbox makes them slow).
func portSweepCase(write bool) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		var sum uint64
		count := 0
		err := withPorts(func() error {
			for _, n := range []int{1, 2, 4} {
				for p := 0; p < 0x10000; p++ {
					port := uint16(p)
					// The CPU faults an access past port 0xffff itself.
					if p+n > 0x10000 || touchesKept(port, n, !write) || n > 1 && p >= 0x1000 && (p+n)&0xff >= n {
						continue
					}
					count++
					if write {
						portOut(port, n, 0xffffffff)
						portOut(port, n, 0)
					} else {
						sum += uint64(portIn(port, n))
					}
				}
			}
			return nil
		})
		return []report.Field{kv("accesses", count), kv("sum", sum)}, err
	}
}
