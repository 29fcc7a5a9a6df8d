package acpi

import (
	"bytes"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
)

const tablesAddr memory.GuestAddress = 0xe0000

var (
	com1 = ISADevice{Name: "COM1", HID: "PNP0501", Port: 0x3f8, PortLen: 8, IRQ: 4}
	rtc  = ISADevice{Name: "RTC_", HID: "PNP0B00", Port: 0x70, PortLen: 2, IRQ: 8}
)

func testConfig(cpus int) Config {
	return Config{
		CPUs:             cpus,
		LAPICAddr:        0xfee00000,
		IOAPICAddr:       0xfec00000,
		IOAPICID:         uint8(cpus),
		SleepControlPort: 0x600,
		SleepStatusPort:  0x601,
		ResetPort:        0x602,
		ResetValue:       1,
		Devices:          []ISADevice{com1, rtc},
	}
}

// tables is what a guest finds by following the RSDP.
type tables struct {
	rsdp             []byte
	xsdt, fadt, madt []byte
	dsdt             []byte
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func write(t *testing.T, cfg Config) *tables {
	t.Helper()
	ram, err := memory.New(16 * memory.MiB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	rsdpAddr, err := Write(ram, tablesAddr, cfg)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if rsdpAddr%16 != 0 || rsdpAddr < memory.EBDAStart || rsdpAddr >= memory.BIOSEnd {
		t.Errorf("RSDP at %v, want it 16-byte aligned in the BIOS area Linux scans", rsdpAddr)
	}
	var tb tables
	tb.rsdp = make([]byte, rsdpSize)
	if err := ram.ReadAt(tb.rsdp, rsdpAddr); err != nil {
		t.Fatal(err)
	}
	if string(tb.rsdp[:8]) != "RSD PTR " || tb.rsdp[15] != 2 || le.Uint32(tb.rsdp[20:]) != rsdpSize {
		t.Fatalf("RSDP % x: want signature, revision 2 and length 36", tb.rsdp)
	}
	if s := sum(tb.rsdp[:20]); s != 0 {
		t.Errorf("RSDP checksum over the first 20 bytes sums to %#x, want 0", s)
	}
	if s := sum(tb.rsdp); s != 0 {
		t.Errorf("RSDP extended checksum sums to %#x, want 0", s)
	}
	table := func(addr uint64, sig string) []byte {
		t.Helper()
		hdr := make([]byte, headerSize)
		if err := ram.ReadAt(hdr, memory.GuestAddress(addr)); err != nil {
			t.Fatalf("%s at %#x: %v", sig, addr, err)
		}
		b := make([]byte, le.Uint32(hdr[4:]))
		if len(b) < headerSize || ram.ReadAt(b, memory.GuestAddress(addr)) != nil {
			t.Fatalf("%s at %#x has length %d", sig, addr, len(b))
		}
		if string(b[:4]) != sig {
			t.Fatalf("table at %#x is %q, want %q", addr, b[:4], sig)
		}
		if s := sum(b); s != 0 {
			t.Errorf("%s checksum sums to %#x, want 0", sig, s)
		}
		if addr%8 != 0 {
			t.Errorf("%s at %#x is not 8-byte aligned", sig, addr)
		}
		return b
	}
	if rsdt := le.Uint32(tb.rsdp[16:]); rsdt != 0 {
		t.Errorf("RSDP names an RSDT at %#x; only the XSDT is written", rsdt)
	}
	tb.xsdt = table(le.Uint64(tb.rsdp[24:]), "XSDT")
	entries := tb.xsdt[headerSize:]
	if len(entries) != 16 {
		t.Fatalf("XSDT has %d bytes of entries, want two 64-bit pointers (FADT, MADT)", len(entries))
	}
	tb.fadt = table(le.Uint64(entries[0:]), "FACP")
	tb.madt = table(le.Uint64(entries[8:]), "APIC")
	dsdt := le.Uint64(tb.fadt[fadtXDSDT:])
	if uint64(le.Uint32(tb.fadt[fadtDSDT:])) != dsdt {
		t.Errorf("FADT DSDT %#x and X_DSDT %#x differ", le.Uint32(tb.fadt[fadtDSDT:]), dsdt)
	}
	tb.dsdt = table(dsdt, "DSDT")
	return &tb
}

func TestHeaders(t *testing.T) {
	tb := write(t, testConfig(2))
	for _, tc := range []struct {
		table    []byte
		revision byte
	}{{tb.xsdt, 1}, {tb.fadt, 6}, {tb.madt, 5}, {tb.dsdt, 2}} {
		sig := string(tc.table[:4])
		if tc.table[8] != tc.revision {
			t.Errorf("%s revision %d, want %d", sig, tc.table[8], tc.revision)
		}
		if string(tc.table[10:16]) != oemID || string(tc.table[16:24]) != oemTableID {
			t.Errorf("%s OEM IDs %q %q", sig, tc.table[10:16], tc.table[16:24])
		}
	}
	if string(tb.rsdp[9:15]) != oemID {
		t.Errorf("RSDP OEM ID %q, want %q", tb.rsdp[9:15], oemID)
	}
}

// gasPort decodes a Generic Address Structure that should name an 8-bit port.
func gasPort(t *testing.T, name string, b []byte) uint16 {
	t.Helper()
	if b[0] != gasSystemIO || b[1] != 8 || b[2] != 0 || b[3] != gasByteAccess {
		t.Errorf("%s GAS % x: want system I/O, 8 bits wide, byte access", name, b[:4])
	}
	return uint16(le.Uint64(b[4:]))
}

func TestFADT(t *testing.T) {
	cfg := testConfig(1)
	f := write(t, cfg).fadt
	if len(f) != fadtSize || f[fadtMinorVersion] != 5 {
		t.Errorf("FADT of %d bytes, minor version %d; want %d bytes, 6.5", len(f), f[fadtMinorVersion], fadtSize)
	}
	flags := le.Uint32(f[fadtFlags:])
	if flags&flagHWReducedACPI == 0 || flags&flagResetRegSup == 0 {
		t.Errorf("FADT flags %#x: want HW_REDUCED_ACPI and RESET_REG_SUP", flags)
	}
	if p := gasPort(t, "SLEEP_CONTROL_REG", f[fadtSleepControl:]); p != cfg.SleepControlPort {
		t.Errorf("SLEEP_CONTROL_REG port %#x, want %#x", p, cfg.SleepControlPort)
	}
	if p := gasPort(t, "SLEEP_STATUS_REG", f[fadtSleepStatus:]); p != cfg.SleepStatusPort {
		t.Errorf("SLEEP_STATUS_REG port %#x, want %#x", p, cfg.SleepStatusPort)
	}
	if p := gasPort(t, "RESET_REG", f[fadtResetReg:]); p != cfg.ResetPort || f[fadtResetValue] != cfg.ResetValue {
		t.Errorf("RESET_REG port %#x value %d, want %#x and %d", p, f[fadtResetValue], cfg.ResetPort, cfg.ResetValue)
	}
	if f[fadtCentury] != 0x32 {
		t.Errorf("FADT CENTURY %#x, want the CMOS century byte 0x32", f[fadtCentury])
	}
	if arch := le.Uint16(f[fadtBootArch:]); arch&bootArch8042 != 0 || arch&bootArchNoVGA == 0 {
		t.Errorf("IAPC_BOOT_ARCH %#x: want no 8042 and VGA not present", arch)
	}

	cfg.HasI8042, cfg.ResetPort = true, 0
	f = write(t, cfg).fadt
	if arch := le.Uint16(f[fadtBootArch:]); arch&bootArch8042 == 0 {
		t.Errorf("IAPC_BOOT_ARCH %#x with an i8042: want the 8042 flag", arch)
	}
	if flags := le.Uint32(f[fadtFlags:]); flags&flagResetRegSup != 0 || !bytes.Equal(f[fadtResetReg:fadtResetReg+12], make([]byte, 12)) {
		t.Errorf("no reset port, yet FADT flags %#x and RESET_REG % x", flags, f[fadtResetReg:fadtResetReg+12])
	}
}

func TestMADT(t *testing.T) {
	for _, cpus := range []int{1, 4, maxCPUs} {
		cfg := testConfig(cpus)
		cfg.IOAPICID = 0xfe
		m := write(t, cfg).madt
		if got := le.Uint32(m[headerSize:]); got != cfg.LAPICAddr {
			t.Errorf("%d CPUs: local APIC address %#x, want %#x", cpus, got, cfg.LAPICAddr)
		}
		var ids []int
		ioapics := 0
		for b := m[headerSize+8:]; len(b) > 0; {
			if len(b) < 2 || b[1] < 2 || int(b[1]) > len(b) {
				t.Fatalf("%d CPUs: malformed MADT entry % x", cpus, b[:min(len(b), 4)])
			}
			e := b[:b[1]]
			switch e[0] {
			case madtLocalAPIC:
				if len(e) != 8 || e[2] != e[3] || le.Uint32(e[4:])&localAPICEnabled == 0 {
					t.Errorf("%d CPUs: local APIC entry % x: want 8 bytes, UID = APIC ID, enabled", cpus, e)
				}
				ids = append(ids, int(e[3]))
			case madtIOAPIC:
				ioapics++
				if len(e) != 12 || e[2] != cfg.IOAPICID || le.Uint32(e[4:]) != cfg.IOAPICAddr || le.Uint32(e[8:]) != 0 {
					t.Errorf("%d CPUs: I/O APIC entry % x: want ID %#x at %#x from GSI 0", cpus, e, cfg.IOAPICID, cfg.IOAPICAddr)
				}
			default:
				t.Errorf("%d CPUs: unexpected MADT entry type %d", cpus, e[0])
			}
			b = b[len(e):]
		}
		if len(ids) != cpus {
			t.Errorf("%d CPUs: %d local APICs", cpus, len(ids))
		}
		for i, id := range ids {
			if id != i {
				t.Errorf("%d CPUs: local APIC %d has ID %d, want %d", cpus, i, id, i)
				break
			}
		}
		if ioapics != 1 {
			t.Errorf("%d CPUs: %d I/O APICs, want 1", cpus, ioapics)
		}
	}
}

func TestDSDTSleepObject(t *testing.T) {
	for _, devs := range [][]ISADevice{nil, {com1, rtc}} {
		cfg := testConfig(1)
		cfg.Devices = devs
		a, err := decodeAML(write(t, cfg).dsdt[headerSize:])
		if err != nil {
			t.Fatalf("%d devices: DSDT AML: %v", len(devs), err)
		}
		// Package (4) {5, 5, 0, 0}: SLP_TYPa = SLP_TYPb = 5, which
		// devices/acpipm treats as power-off.
		want := []byte{amlPackageOp, 8, 4, amlBytePfx, 5, amlBytePfx, 5, amlZeroOp, amlZeroOp}
		if got := a.names[`\_S5_`]; !bytes.Equal(got, want) {
			t.Errorf("%d devices: \\_S5_ = % x, want % x", len(devs), got, want)
		}
	}
}

func TestDSDTDevices(t *testing.T) {
	kbd := ISADevice{Name: "KBD_", HID: "PNP0303", Port: 0x60, PortLen: 1, IRQ: 1}
	cfg := testConfig(1)
	cfg.Devices = []ISADevice{com1, rtc, kbd}
	a, err := decodeAML(write(t, cfg).dsdt[headerSize:])
	if err != nil {
		t.Fatalf("DSDT AML: %v", err)
	}
	for i, d := range cfg.Devices {
		path := `\_SB_.` + d.Name
		id, _ := eisaID(d.HID)
		if got := a.names[path+"._HID"]; !bytes.Equal(got, append([]byte{amlDWordPfx}, id...)) {
			t.Errorf("%s._HID = % x, want DWord EISA ID % x for %s", path, got, id, d.HID)
		}
		if got := a.names[path+"._UID"]; !bytes.Equal(got, []byte{amlBytePfx, byte(i)}) {
			t.Errorf("%s._UID = % x, want %d", path, got, i)
		}
		res, err := resources(a.names[path+"._CRS"])
		if err != nil {
			t.Errorf("%s._CRS: %v", path, err)
			continue
		}
		io := []byte{resIO, resIODecode16, byte(d.Port), byte(d.Port >> 8), byte(d.Port), byte(d.Port >> 8), 1, d.PortLen}
		mask := uint16(1) << d.IRQ
		irq := []byte{resIRQ, byte(mask), byte(mask >> 8)}
		want := [][]byte{io, irq, {resEndTag, 0}}
		if len(res) != len(want) {
			t.Errorf("%s._CRS = % x, want IO, IRQ, end tag", path, res)
			continue
		}
		for j := range want {
			if !bytes.Equal(res[j], want[j]) {
				t.Errorf("%s._CRS descriptor %d = % x, want % x", path, j, res[j], want[j])
			}
		}
	}
	// The spelled-out bytes for COM1, as iasl compiles
	// Name (_HID, EisaId ("PNP0501")) and the resource template.
	dsdt := write(t, cfg).dsdt
	for _, want := range [][]byte{
		{amlNameOp, '_', 'H', 'I', 'D', amlDWordPfx, 0x41, 0xd0, 0x05, 0x01},
		{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00},
	} {
		if !bytes.Contains(dsdt, want) {
			t.Errorf("DSDT lacks % x", want)
		}
	}
}

// Many devices push the _SB_ scope past the one- and two-byte PkgLength.
func TestDSDTLargeScope(t *testing.T) {
	cfg := testConfig(1)
	cfg.Devices = nil
	for i := 0; i < 120; i++ {
		cfg.Devices = append(cfg.Devices, ISADevice{Name: string(rune('A'+i/26%26)) + string(rune('A'+i%26)) + "0_", HID: "PNP0C02", Port: uint16(0x1000 + i), PortLen: 1, IRQ: 5})
	}
	dsdt := write(t, cfg).dsdt
	if len(dsdt) < 4096+headerSize {
		t.Fatalf("DSDT is %d bytes, want one past 4 KiB to exercise a 3-byte PkgLength", len(dsdt))
	}
	a, err := decodeAML(dsdt[headerSize:])
	if err != nil {
		t.Fatalf("DSDT AML: %v", err)
	}
	if _, ok := a.names[`\_SB_.DU0_._CRS`]; !ok {
		t.Errorf("last device missing from the decoded AML: %v", a.order[len(a.order)-4:])
	}
}

func TestWriteRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		base memory.GuestAddress
		says string
	}{
		{"no CPUs", func(c *Config) { c.CPUs = 0 }, tablesAddr, "CPUs"},
		{"256 CPUs", func(c *Config) { c.CPUs = 256 }, tablesAddr, "CPUs"},
		{"three-letter name", func(c *Config) { c.Devices[0].Name = "CO1" }, tablesAddr, "four characters"},
		{"lower-case name", func(c *Config) { c.Devices[0].Name = "com1" }, tablesAddr, "name"},
		{"name starting with a digit", func(c *Config) { c.Devices[0].Name = "1COM" }, tablesAddr, "name"},
		{"bad EISA ID", func(c *Config) { c.Devices[0].HID = "PNP05O1" }, tablesAddr, "hex digit"},
		{"IRQ 16", func(c *Config) { c.Devices[0].IRQ = 16 }, tablesAddr, "ISA IRQ"},
		{"no ports", func(c *Config) { c.Devices[0].PortLen = 0 }, tablesAddr, "no ports"},
		{"ports past 0xffff", func(c *Config) { c.Devices[0].Port = 0xfffe }, tablesAddr, "0xffff"},
		{"past the BIOS area", func(c *Config) {}, memory.BIOSEnd - 0x100, "BIOS area"},
		{"unaligned base", func(c *Config) {}, tablesAddr + 4, "16-byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ram, err := memory.New(16 * memory.MiB)
			if err != nil {
				t.Fatal(err)
			}
			defer ram.Close()
			cfg := testConfig(2)
			cfg.Devices = []ISADevice{com1, rtc}
			tc.edit(&cfg)
			addr, err := Write(ram, tc.base, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Write = %v, %v; want an error saying %q", addr, err, tc.says)
			}
		})
	}
}
