package acpi

import "github.com/govmm/govmm/memory"

const (
	oemID      = "GOVMM "
	oemTableID = "GOVMMVM "
	creatorID  = "GOVM"
	headerSize = 36
	rsdpSize   = 36
	fadtSize   = 276 // revision 6
)

// header is the System Description Table Header (5.2.6); the checksum is
// filled in by finish once the table is complete.
func header(sig string, revision byte) []byte {
	h := make([]byte, headerSize)
	copy(h[0:], sig)
	h[8] = revision
	copy(h[10:], oemID)
	copy(h[16:], oemTableID)
	le.PutUint32(h[24:], 1)
	copy(h[28:], creatorID)
	le.PutUint32(h[32:], 1)
	return h
}

// finish sets a table's length and checksum.
func finish(t []byte) []byte {
	le.PutUint32(t[4:], uint32(len(t)))
	t[9] = 0
	checksum(t, 9)
	return t
}

// rsdpStruct is the Root System Description Pointer, revision 2 (5.2.5.3).
func rsdpStruct(xsdt memory.GuestAddress) []byte {
	r := make([]byte, rsdpSize)
	copy(r, "RSD PTR ")
	copy(r[9:], oemID)
	r[15] = 2
	le.PutUint32(r[20:], rsdpSize)
	le.PutUint64(r[24:], uint64(xsdt))
	checksum(r[:20], 8)
	checksum(r, 32)
	return r
}

func xsdtTable(tables ...memory.GuestAddress) []byte {
	t := header("XSDT", 1)
	for _, a := range tables {
		t = le.AppendUint64(t, uint64(a))
	}
	return finish(t)
}

// FADT fields (5.2.9, table 5.9) and flags.
const (
	fadtDSDT          = 40
	fadtCentury       = 108
	fadtBootArch      = 109
	fadtFlags         = 112
	fadtResetReg      = 116
	fadtResetValue    = 128
	fadtMinorVersion  = 131
	fadtXDSDT         = 140
	fadtSleepControl  = 244
	fadtSleepStatus   = 256
	bootArch8042      = 1 << 1
	bootArchNoVGA     = 1 << 2
	flagPowerButton   = 1 << 4 // no fixed-feature power button
	flagSleepButton   = 1 << 5
	flagResetRegSup   = 1 << 10
	flagHWReducedACPI = 1 << 20
	cmosCentury       = 0x32
	gasSystemIO       = 1
	gasByteAccess     = 1
)

// gas writes a Generic Address Structure (5.2.3.2) for an 8-bit port.
func gas(b []byte, port uint16) {
	b[0], b[1], b[2], b[3] = gasSystemIO, 8, 0, gasByteAccess
	le.PutUint64(b[4:], uint64(port))
}

func fadtTable(cfg Config, dsdt memory.GuestAddress) []byte {
	t := append(header("FACP", 6), make([]byte, fadtSize-headerSize)...)
	le.PutUint32(t[fadtDSDT:], uint32(dsdt))
	le.PutUint64(t[fadtXDSDT:], uint64(dsdt))
	t[fadtCentury] = cmosCentury
	arch := uint16(bootArchNoVGA)
	if cfg.HasI8042 {
		arch |= bootArch8042
	}
	le.PutUint16(t[fadtBootArch:], arch)
	flags := uint32(flagHWReducedACPI | flagPowerButton | flagSleepButton)
	if cfg.ResetPort != 0 {
		flags |= flagResetRegSup
		gas(t[fadtResetReg:], cfg.ResetPort)
		t[fadtResetValue] = cfg.ResetValue
	}
	le.PutUint32(t[fadtFlags:], flags)
	t[fadtMinorVersion] = 5
	gas(t[fadtSleepControl:], cfg.SleepControlPort)
	gas(t[fadtSleepStatus:], cfg.SleepStatusPort)
	return finish(t)
}

// MADT entry types (5.2.12).
const (
	madtLocalAPIC      = 0
	madtIOAPIC         = 1
	madtPCATCompat     = 1
	localAPICEnabled   = 1
	localAPICEntrySize = 8
	ioAPICEntrySize    = 12
)

func madtTable(cfg Config) []byte {
	t := header("APIC", 5)
	t = le.AppendUint32(t, cfg.LAPICAddr)
	t = le.AppendUint32(t, madtPCATCompat)
	for id := 0; id < cfg.CPUs; id++ {
		t = append(t, madtLocalAPIC, localAPICEntrySize, byte(id), byte(id))
		t = le.AppendUint32(t, localAPICEnabled)
	}
	t = append(t, madtIOAPIC, ioAPICEntrySize, cfg.IOAPICID, 0)
	t = le.AppendUint32(t, cfg.IOAPICAddr)
	t = le.AppendUint32(t, 0) // global system interrupt base
	return finish(t)
}

// s5SleepType is the SLP_TYP the guest writes to enter S5: it must match
// what devices/acpipm treats as a power-off.
const s5SleepType = 5

func dsdtTable(cfg Config) []byte {
	t := header("DSDT", 2)
	var sb []byte
	for i, d := range cfg.Devices {
		sb = append(sb, amlDevice(d, byte(i))...)
	}
	if cfg.PCI != nil {
		sb = append(sb, pciRootDevice(cfg.PCI)...)
	}
	if len(sb) > 0 {
		t = append(t, amlScope("_SB_", sb)...)
	}
	// Name (_S5, Package (4) {5, 5, 0, 0}): SLP_TYPa, SLP_TYPb, reserved.
	pkg := []byte{4, amlBytePfx, s5SleepType, amlBytePfx, s5SleepType, amlZeroOp, amlZeroOp}
	t = append(t, amlNameOp, '_', 'S', '5', '_', amlPackageOp, byte(len(pkg)+1))
	t = append(t, pkg...)
	return finish(t)
}
