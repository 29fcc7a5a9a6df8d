package acpi

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAMLInteger(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{amlZeroOp}},
		{1, []byte{amlOneOp}},
		{2, []byte{amlBytePfx, 2}},
		{0xff, []byte{amlBytePfx, 0xff}},
		{0x100, []byte{amlWordPfx, 0x00, 0x01}},
		{0xffff, []byte{amlWordPfx, 0xff, 0xff}},
		{0x1ffff, []byte{amlDWordPfx, 0xff, 0xff, 0x01, 0x00}},
		{0x1_0000_0000, []byte{amlQWordPfx, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		got := amlInteger(tc.v)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("amlInteger(%#x) = % x, want % x", tc.v, got, tc.want)
		}
		if v, n, err := integer(got); err != nil || v != tc.v || n != len(got) {
			t.Errorf("amlInteger(%#x) decodes to %#x (%d bytes, %v)", tc.v, v, n, err)
		}
	}
}

func TestAMLPackageAndBuffer(t *testing.T) {
	if got, want := amlPackage(amlInteger(0), amlInteger(5)), []byte{amlPackageOp, 5, 2, amlZeroOp, amlBytePfx, 5}; !bytes.Equal(got, want) {
		t.Errorf("Package () {0, 5} = % x, want % x", got, want)
	}
	if got, want := amlPackage(), []byte{amlPackageOp, 2, 0}; !bytes.Equal(got, want) {
		t.Errorf("Package () {} = % x, want % x", got, want)
	}
	if got, want := amlBuffer([]byte{resEndTag, 0}), []byte{amlBufferOp, 5, amlBytePfx, 2, resEndTag, 0}; !bytes.Equal(got, want) {
		t.Errorf("Buffer () {end tag} = % x, want % x", got, want)
	}
	big := amlBuffer(make([]byte, 300))
	if n, err := dataSize(big); err != nil || n != len(big) {
		t.Errorf("300-byte buffer decodes as %d of %d bytes: %v", n, len(big), err)
	}
}

// iaslPCI0 is what iasl 20200925 compiles from
//
//	Device (PCI0) {
//	    Name (_HID, EisaId ("PNP0A08"))  Name (_CID, EisaId ("PNP0A03"))
//	    Name (_SEG, Zero)  Name (_BBN, Zero)  Name (_UID, Zero)
//	    Name (_CRS, ResourceTemplate () {
//	        WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
//	        IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
//	        WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0000, 0x0CF7, 0, 0x0CF8)
//	        WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
//	        DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
//	                     0, 0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000)
//	    })
//	    Name (_PRT, Package () {
//	        Package () { 0x0001FFFF, Zero, Zero, 17 },
//	        Package () { 0x001FFFFF, Zero, Zero, 23 },
//	    })
//	}
const iaslPCI0 = "5b824a0a50434930085f4849440c41d00a08085f4349440c41d00a03085f53454700085f42424e00085f55494400085f4352" +
	"531148050a54880d00020c00000000000000000001004701f80cf80c0108880d00010c0300000000f70c0000f80c880d0001" +
	"0c030000000dffff000000f3871700000c0100000000000000c0ffffbffe000000000000c03e7900085f505254121a02120b" +
	"040cffff010000000a11120b040cffff1f0000000a17"

var testPCI = PCIRoot{
	MMIOBase: 0xc0000000, MMIOSize: 0x3ec00000,
	Routes: []PCIRoute{{Device: 1, GSI: 17}, {Device: 31, GSI: 23}},
}

func TestPCIRootMatchesIASL(t *testing.T) {
	want, err := hex.DecodeString(iaslPCI0)
	if err != nil {
		t.Fatal(err)
	}
	if got := pciRootDevice(&testPCI); !bytes.Equal(got, want) {
		t.Errorf("Device (PCI0):\n got % x\nwant % x", got, want)
	}
}

func TestDSDTPCIRoot(t *testing.T) {
	cfg := testConfig(1)
	pci := testPCI
	for dev := uint8(1); dev < 32; dev++ {
		pci.Routes = append(pci.Routes, PCIRoute{Device: dev, Pin: 3, GSI: 16 + uint32(dev)%8})
	}
	cfg.PCI = &pci
	a, err := decodeAML(write(t, cfg).dsdt[headerSize:])
	if err != nil {
		t.Fatalf("DSDT AML: %v", err)
	}
	const p = `\_SB_.PCI0`
	for name, want := range map[string][]byte{
		"._HID": amlEISAID("PNP0A08"), "._CID": amlEISAID("PNP0A03"),
		"._SEG": {amlZeroOp}, "._BBN": {amlZeroOp}, "._UID": {amlZeroOp},
	} {
		if got := a.names[p+name]; !bytes.Equal(got, want) {
			t.Errorf("%s%s = % x, want % x", p, name, got, want)
		}
	}
	res, err := resources(a.names[p+"._CRS"])
	if err != nil {
		t.Fatalf("%s._CRS: %v", p, err)
	}
	if len(res) != 6 || res[0][3] != resTypeBus || res[2][3] != resTypeIO || res[4][0] != resDWordAddr {
		t.Errorf("%s._CRS = % x, want bus, 0xCF8 ports, two I/O windows, a memory window, end tag", p, res)
	}
	mem := res[4]
	if lo, hi := le.Uint32(mem[10:]), le.Uint32(mem[14:]); lo != pci.MMIOBase || hi != pci.MMIOBase+pci.MMIOSize-1 {
		t.Errorf("memory window [%#x, %#x], want [%#x, %#x]", lo, hi, pci.MMIOBase, pci.MMIOBase+pci.MMIOSize-1)
	}
	prt := a.names[p+"._PRT"]
	body, _, err := pkg(prt, 1)
	if err != nil || int(body[0]) != len(pci.Routes) {
		t.Fatalf("%s._PRT % x: want %d entries (%v)", p, prt[:min(len(prt), 8)], len(pci.Routes), err)
	}
	last := pci.Routes[len(pci.Routes)-1]
	want := amlPackage(amlInteger(31<<16|0xffff), amlInteger(3), amlInteger(0), amlInteger(uint64(last.GSI)))
	if !bytes.HasSuffix(prt, want) {
		t.Errorf("%s._PRT ends % x, want % x", p, prt[len(prt)-len(want):], want)
	}
}

func TestPCIRootRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		pci  PCIRoot
		says string
	}{
		{"empty window", PCIRoot{MMIOBase: 0xc0000000}, "window"},
		{"window past 4 GiB", PCIRoot{MMIOBase: 0xc0000000, MMIOSize: 0x40000001}, "below 4 GiB"},
		{"device 32", PCIRoot{MMIOBase: 0xc0000000, MMIOSize: 0x1000, Routes: []PCIRoute{{Device: 32, GSI: 16}}}, "device 32"},
		{"pin 4", PCIRoot{MMIOBase: 0xc0000000, MMIOSize: 0x1000, Routes: []PCIRoute{{Device: 1, Pin: 4, GSI: 16}}}, "pin 4"},
		{"256 routes", PCIRoot{MMIOBase: 0xc0000000, MMIOSize: 0x1000, Routes: make([]PCIRoute, 256)}, "at most 255"},
	} {
		if err := tc.pci.validate(); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: validate = %v, want an error saying %q", tc.name, err, tc.says)
		}
	}
}

// TestDSDTCompilesWithIASL disassembles the DSDT with ACPICA's iasl and
// compiles the result again: both steps reject AML Linux's interpreter
// would choke on. Debian's acpica-tools provides iasl; make test installs
// it and sets GOVMM_REQUIRE_IASL=1, so that there a missing iasl fails the
// test instead of skipping it.
func TestDSDTCompilesWithIASL(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_IASL") == "1" {
			t.Fatal("iasl not found and GOVMM_REQUIRE_IASL=1: apt-get install acpica-tools")
		}
		t.Skip("iasl not found: apt-get install acpica-tools to run this test")
	}
	cfg := testConfig(2)
	cfg.PCI = &testPCI
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dsdt.dat"), write(t, cfg).dsdt, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-d", "dsdt.dat"}, {"-p", "recompiled", "dsdt.dsl"}} {
		cmd := exec.Command(iasl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(" 0 Errors")) && args[0] != "-d" {
			t.Fatalf("iasl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dsl, err := os.ReadFile(filepath.Join(dir, "dsdt.dsl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Device (PCI0)`, `EisaId ("PNP0A08")`, `WordBusNumber`, `DWordMemory`, `0xFEBFFFFF`, `Name (_PRT`} {
		if !strings.Contains(string(dsl), want) {
			t.Errorf("disassembled DSDT lacks %q:\n%s", want, dsl)
		}
	}
}
