package hostile

import (
	"github.com/govmm/govmm/guest/report"
)

// indirectCase offers the spare disk one chain whose head is an indirect
// table that fill writes (virtio 1.2 §2.7.5.3).
func indirectCase(fill func(tbl page) (addr uint64, n uint32)) func(e *env) ([]report.Field, error) {
	return refused(func(e *env) ([]report.Field, error) {
		return e.onQueue(targets[1], func(e *env, v *vq) error {
			tbl, err := e.m.page()
			if err != nil {
				return err
			}
			addr, n := fill(tbl)
			v.setDesc(0, addr, n, fIndirect, 0)
			v.push(0)
			return nil
		})
	})
}

func indirectCases() []kase {
	return []kase{
		{"indirect-self", indirectCase(func(t page) (uint64, uint32) {
			putDesc(t.b, 0, t.phys, 32, fIndirect, 0) // nested, pointing at itself
			putDesc(t.b, 1, t.phys, 16, fNext|fWrite, 0)
			return t.phys, 32
		})},
		{"indirect-loop", indirectCase(func(t page) (uint64, uint32) {
			putDesc(t.b, 0, t.phys, 16, fNext, 1)
			putDesc(t.b, 1, t.phys, 16, fNext|fWrite, 0)
			return t.phys, 32
		})},
		{"indirect-odd-length", indirectCase(func(t page) (uint64, uint32) { return t.phys, 17 })},
		{"indirect-empty", indirectCase(func(t page) (uint64, uint32) { return t.phys, 0 })},
		{"indirect-huge", indirectCase(func(t page) (uint64, uint32) { return t.phys, 0xfffffff0 })},
		{"indirect-outside-ram", indirectCase(func(t page) (uint64, uint32) { return outsideRAM, 4096 })},
		{"indirect-next-out-of-range", indirectCase(func(t page) (uint64, uint32) {
			putDesc(t.b, 0, t.phys, 16, fNext, 0xffff)
			return t.phys, 16
		})},
	}
}

// cases is every case, in the order Run takes them: each leaves its
// device reset, so the order only groups them for reading.
func cases() []kase {
	out := chainCases()
	out = append(out, indirectCases()...)
	out = append(out, []kase{
		{"next-out-of-range", refusedOnRNG(func(e *env, v *vq) error {
			buf, err := buffer(e.m)
			v.setDesc(0, buf, 16, fWrite|fNext, 0xffff)
			v.push(0)
			return err
		})},
		{"head-out-of-range", refusedOnRNG(func(e *env, v *vq) error {
			for i := 0; i < 4; i++ {
				v.push(0xffff - uint16(i))
			}
			return nil
		})},
		{"queue-size-0", queueSizeCase(0)},
		{"queue-size-not-power-of-2", queueSizeCase(100)},
		{"queue-size-over-max", queueSizeCase(0x8000)},
		{"queue-size-ffff", queueSizeCase(0xffff)},
		{"queue-addr-outside-ram", queueAddrCase(func(v *vq) uint64 { return outsideRAM })},
		{"queue-addr-unaligned", queueAddrCase(func(v *vq) uint64 { return v.desc.phys + 1 })},
		{"queue-addr-mmio-hole", queueAddrCase(func(v *vq) uint64 { return lapicBase })},
		{"queue-rings-overlap", queueAddrCase(func(v *vq) uint64 { return v.used.phys })},
		{"queue-addr-change-blk", addrChangeCase(targets[1])},
		{"queue-addr-change-net", addrChangeCase(targets[2])},
		{"driver-ok-before-features-ok", statusOrderCase},
		{"features-after-driver-ok", featuresAfterCase},
		{"select-missing-queue", selectCase},
		{"kick-storm", kickStormCase},
		{"reset-mid-io-rng", resetMidIOCase(targets[0])},
		{"reset-mid-io-blk", resetMidIOCase(targets[1])},
		{"reset-mid-io-net", resetMidIOCase(targets[2])},
		{"reset-mid-io-console", resetMidIOCase(targets[3])},
		{"reset-storm-rng", resetStormCase(targets[0], 300)},
		{"reset-storm-blk", resetStormCase(targets[1], 300)},
		{"reset-storm-net", resetStormCase(targets[2], 300)},
		{"reset-storm-console", resetStormCase(targets[3], 300)},
		{"race-reset-vs-registers-blk", raceCase(targets[1])},
		{"race-reset-vs-registers-net", raceCase(targets[2])},
		{"msix-vector-out-of-range", msixVectorCase},
		{"msix-table-widths", msixTableCase},
		{"bar-widths-rng", barWidthCase(targets[0])},
		{"bar-widths-blk", barWidthCase(targets[1])},
		{"bar-widths-net", barWidthCase(targets[2])},
		{"bar-widths-console", barWidthCase(targets[3])},
		{"bar-on-ram", barMoveCase(func(e *env) uint64 { return 0x100000 })},
		{"bar-on-other-bar", barMoveCase(func(e *env) uint64 { return e.healthBAR })},
		{"bar-on-lapic", barMoveCase(func(e *env) uint64 { return lapicBase })},
		{"bar-on-ioapic", barMoveCase(func(e *env) uint64 { return ioapicBase })},
		{"bar-sizing", barSizingCase},
		{"config-read-sweep", configReadCase},
		{"config-bad-writes", configBadWriteCase},
		{"config-address-flood", configAddressFloodCase},
		{"config-write-sweep-rng", configWriteCase(targets[0])},
		{"config-write-sweep-blk", configWriteCase(targets[1])},
		{"config-write-sweep-net", configWriteCase(targets[2])},
		{"config-write-sweep-console", configWriteCase(targets[3])},
		{"pci-cfg-window", pciCfgWindowCase},
		{"port-read-sweep", portSweepCase(false)},
		{"port-write-sweep", portSweepCase(true)},
	}...)
	return append(out, blkNetCases()...)
}

// refusedOnRNG runs build on the rng's queue; the rng must refuse it.
func refusedOnRNG(build func(e *env, v *vq) error) func(e *env) ([]report.Field, error) {
	return refused(func(e *env) ([]report.Field, error) { return e.onQueue(targets[0], build) })
}
