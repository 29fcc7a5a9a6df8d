package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Common configuration registers (virtio 1.2 §4.1.4.3).
const (
	regDevFeatureSel = 0x00
	regDevFeature    = 0x04
	regDrvFeatureSel = 0x08
	regDrvFeature    = 0x0c
	regConfigVector  = 0x10
	regNumQueues     = 0x12
	regStatus        = 0x14
	regQueueSelect   = 0x16
	regQueueSize     = 0x18
	regQueueVector   = 0x1a
	regQueueEnable   = 0x1c
	regQueueNotify   = 0x1e
	regQueueDesc     = 0x20
	regQueueDriver   = 0x28
	regQueueDevice   = 0x30

	// Device status bits (virtio 1.2 §2.1).
	stAck         = 1
	stDriver      = 2
	stDriverOK    = 4
	stFeaturesOK  = 8
	stNeedsReset  = 0x40
	stFailed      = 0x80
	featVersion1  = 1 << 32
	featIndirect  = 1 << 28
	capVendor     = 0x09
	capMSIX       = 0x11
	cfgCommon     = 1
	cfgNotify     = 2
	cfgISR        = 3
	cfgDevice     = 4
	cfgPCI        = 5
	noVector      = 0xffff
	resetDeadline = time.Second
)

// dev is a virtio-pci function this package drives itself: its BAR 0
// mapped, and where its structures are in it.
type dev struct {
	fn
	bar                             []byte
	barAddr                         uint64 // guest-physical, from BAR 0
	bar64                           bool   // BAR 0 is 64-bit: BAR 1 holds its upper half
	common, notify, isr, devcfg     int    // offsets in BAR 0
	notifyMul                       int
	pciCfgCap, msixCap              int // offsets in config space; 0 if absent
	msixTable, msixPBA, msixVectors int
}

// open unbinds f and maps its BAR 0 with memory decoding and bus mastering
// on and INTx off.
func open(f fn) (*dev, error) {
	if err := f.unbind(); err != nil {
		return nil, err
	}
	d := &dev{fn: f}
	if err := d.parseCaps(); err != nil {
		return nil, err
	}
	if err := d.enable(); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(filepath.Join(f.dir, "resource0"), os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, err
	}
	d.bar, err = unix.Mmap(int(file.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s BAR 0: %w", f.name, err)
	}
	return d, nil
}

func (d *dev) enable() error {
	lo, err := d.cfgRead(regBAR0, 4)
	if err != nil {
		return err
	}
	hi := uint32(0)
	if d.bar64 = lo&6 == 4; d.bar64 {
		if hi, err = d.cfgRead(regBAR0+4, 4); err != nil {
			return err
		}
	}
	d.barAddr = uint64(hi)<<32 | uint64(lo&^0xf)
	return d.cfgWrite(regCommand, 2, cmdMemory|cmdBusMaster|cmdINTxDisable)
}

// parseCaps walks the capability list as a driver does (virtio 1.2 §4.1.4).
func (d *dev) parseCaps() error {
	ptr, err := d.cfgRead(regCapPtr, 1)
	for n := 0; err == nil && ptr != 0 && n < 48; n++ {
		p := int(ptr &^ 3)
		var id, typ, off, mul uint32
		id, err = d.cfgRead(p, 1)
		if err == nil && id == capVendor {
			typ, _ = d.cfgRead(p+3, 1)
			off, _ = d.cfgRead(p+8, 4)
			mul, err = d.cfgRead(p+16, 4)
			d.setCap(typ, p, int(off), int(mul))
		}
		if err == nil && id == capMSIX {
			d.msixCap = p
			ctl, _ := d.cfgRead(p+2, 2)
			tbl, _ := d.cfgRead(p+4, 4)
			pba, _ := d.cfgRead(p+8, 4)
			d.msixVectors, d.msixTable, d.msixPBA = int(ctl&0x7ff)+1, int(tbl&^7), int(pba&^7)
		}
		if err == nil {
			ptr, err = d.cfgRead(p+1, 1)
		}
	}
	if err == nil && d.notifyMul == 0 {
		err = fmt.Errorf("%s: no virtio notify capability", d.name)
	}
	return err
}

func (d *dev) setCap(typ uint32, p, off, mul int) {
	switch typ {
	case cfgCommon:
		d.common = off
	case cfgNotify:
		d.notify, d.notifyMul = off, mul
	case cfgISR:
		d.isr = off
	case cfgDevice:
		d.devcfg = off
	case cfgPCI:
		d.pciCfgCap = p
	}
}

// rd and wr access BAR 0; accesses past its end are dropped, reading 0.
func (d *dev) rd(off, n int) uint64 {
	if off < 0 || off+n > len(d.bar) {
		return 0
	}
	return mmioRead(d.bar, off, n)
}

func (d *dev) wr(off, n int, v uint64) {
	if off >= 0 && off+n <= len(d.bar) {
		mmioWrite(d.bar, off, n, v)
	}
}

func (d *dev) status() uint8     { return uint8(d.rd(d.common+regStatus, 1)) }
func (d *dev) setStatus(s uint8) { d.wr(d.common+regStatus, 1, uint64(s)) }

// reset writes 0 to the status and waits for it to read 0 (virtio 1.2
// §4.1.4.3.2), bounded.
func (d *dev) reset() error {
	d.setStatus(0)
	deadline := time.Now().Add(resetDeadline)
	for d.status() != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: status %#x after reset", d.name, d.status())
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// negotiate resets the device and takes it to FEATURES_OK with
// VERSION_1 and whatever of want the device offers.
func (d *dev) negotiate(want uint64) (uint64, error) {
	if err := d.reset(); err != nil {
		return 0, err
	}
	d.setStatus(stAck)
	d.setStatus(stAck | stDriver)
	var offered uint64
	for sel := 0; sel < 2; sel++ {
		d.wr(d.common+regDevFeatureSel, 4, uint64(sel))
		offered |= d.rd(d.common+regDevFeature, 4) << (32 * sel)
	}
	got := offered & (want | featVersion1)
	for sel := 0; sel < 2; sel++ {
		d.wr(d.common+regDrvFeatureSel, 4, uint64(sel))
		d.wr(d.common+regDrvFeature, 4, got>>(32*sel)&0xffffffff)
	}
	d.setStatus(stAck | stDriver | stFeaturesOK)
	if d.status()&stFeaturesOK == 0 {
		return got, fmt.Errorf("%s: FEATURES_OK not kept (features %#x)", d.name, got)
	}
	return got, nil
}

func (d *dev) driverOK() {
	d.setStatus(stAck | stDriver | stFeaturesOK | stDriverOK)
}

func (d *dev) selectQueue(q int) { d.wr(d.common+regQueueSelect, 2, uint64(q)) }

func (d *dev) queueMax(q int) int {
	d.selectQueue(q)
	return int(d.rd(d.common+regQueueSize, 2))
}

// kick notifies queue q the way a driver does: its index at its register.
func (d *dev) kick(q int) {
	d.selectQueue(q)
	off := int(d.rd(d.common+regQueueNotify, 2))
	d.wr(d.notify+off*d.notifyMul, 2, uint64(q))
}
