package virtio

import (
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
)

// Where a chainCase is laid out in guest memory (also the fuzz image layout).
const (
	caseRAM      = 2 * memory.MiB
	caseTable    = memory.GuestAddress(0)
	caseIndirect = memory.GuestAddress(0x200)
)

// chainCase is one descriptor table (and optional indirect table) and what
// walking it from head must give.
type chainCase struct {
	name         string
	sizeLog      uint8 // queue size is 1 << sizeLog
	indirectOK   bool
	head         uint16
	table        []rawDesc
	indirect     []rawDesc
	wantErr      string // "" for a valid chain
	wantR, wantW int
}

func (c chainCase) size() uint16 { return 1 << c.sizeLog }

// image is the guest memory a case needs, from caseTable on.
func (c chainCase) image() []byte {
	img := make([]byte, caseIndirect+descSize*memory.GuestAddress(len(c.indirect)))
	for i, d := range c.table {
		copy(img[caseTable+descSize*memory.GuestAddress(i):], d.bytes())
	}
	for i, d := range c.indirect {
		copy(img[caseIndirect+descSize*memory.GuestAddress(i):], d.bytes())
	}
	return img
}

const (
	fNext  = descFNext
	fWrite = descFWrite
	fInd   = descFIndirect
)

func descChain(n int, flags uint16) []rawDesc {
	ds := make([]rawDesc, n)
	for i := range ds {
		ds[i] = rawDesc{addr: 0x1000 * uint64(i+1), len: 16, flags: flags | fNext, next: uint16(i + 1)}
	}
	ds[n-1].flags &^= fNext
	return ds
}

var chainCases = []chainCase{
	{name: "one readable", sizeLog: 3, table: []rawDesc{{0x1000, 16, 0, 0}}, wantR: 1},
	{name: "readable then writable", sizeLog: 3, head: 2,
		table: []rawDesc{{0x3000, 1, fWrite, 0}, {}, {0x1000, 16, fNext, 3}, {0x2000, 8, fNext, 0}}, wantR: 2, wantW: 1},
	{name: "zero length left out", sizeLog: 3, table: []rawDesc{{0x1000, 0, fNext, 1}, {0x2000, 4, fWrite, 0}}, wantW: 1},
	{name: "queue-size chain", sizeLog: 3, table: descChain(8, 0), wantR: 8},
	{name: "size-1 queue", sizeLog: 0, table: []rawDesc{{0x1000, 4, fWrite, 0}}, wantW: 1},
	{name: "buffer ends at the end of RAM", sizeLog: 3, table: []rawDesc{{caseRAM - 16, 16, 0, 0}}, wantR: 1},
	{name: "indirect", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 48, fInd, 0}},
		indirect: []rawDesc{{0x1000, 16, fNext, 1}, {0x2000, 16, fNext | fWrite, 2}, {0x3000, 1, fWrite, 0}}, wantR: 1, wantW: 2},
	{name: "direct then indirect", sizeLog: 3, indirectOK: true,
		table:    []rawDesc{{0x1000, 16, fNext, 1}, {uint64(caseIndirect), 32, fInd, 0}},
		indirect: []rawDesc{{0x2000, 16, fNext, 1}, {0x3000, 1, fWrite, 0}}, wantR: 2, wantW: 1},
	{name: "WRITE on the indirect descriptor is ignored", sizeLog: 3, indirectOK: true,
		table: []rawDesc{{uint64(caseIndirect), 16, fInd | fWrite, 0}}, indirect: []rawDesc{{0x1000, 4, 0, 0}}, wantR: 1},
	{name: "indirect table of queue size", sizeLog: 3, indirectOK: true,
		table: []rawDesc{{uint64(caseIndirect), 128, fInd, 0}}, indirect: descChain(8, fWrite), wantW: 8},

	{name: "head out of range", sizeLog: 3, head: 8, table: descChain(1, 0), wantErr: "head index is not below the queue size 8"},
	{name: "next out of range", sizeLog: 3, table: []rawDesc{{0x1000, 1, fNext, 8}}, wantErr: "next 8 is not below the queue size 8"},
	{name: "loop", sizeLog: 3, table: []rawDesc{{0x1000, 1, fNext, 1}, {0x1000, 1, fNext, 0}}, wantErr: "longer than the queue size"},
	{name: "self loop", sizeLog: 3, table: []rawDesc{{0x1000, 1, fNext, 0}}, wantErr: "longer than the queue size"},
	{name: "self loop of empty buffers", sizeLog: 15, table: []rawDesc{{0, 0, fNext, 0}}, wantErr: "longer than the queue size"},
	{name: "address outside RAM", sizeLog: 3, table: []rawDesc{{1 << 40, 1, 0, 0}}, wantErr: "outside guest RAM"},
	{name: "address in the device hole", sizeLog: 3, table: []rawDesc{{3 << 30, 0, 0, 0}}, wantErr: "outside guest RAM"},
	{name: "length past the end of RAM", sizeLog: 3, table: []rawDesc{{caseRAM - 8, 16, fWrite, 0}}, wantErr: "outside guest RAM"},
	{name: "huge length", sizeLog: 3, table: []rawDesc{{0, ^uint32(0), 0, 0}}, wantErr: "outside guest RAM"},
	{name: "address plus length wraps", sizeLog: 3, table: []rawDesc{{^uint64(0) - 7, 16, 0, 0}}, wantErr: "outside guest RAM"},
	{name: "readable after writable", sizeLog: 3, table: []rawDesc{{0x1000, 4, fWrite | fNext, 1}, {0x2000, 4, 0, 0}},
		wantErr: "device-readable buffer after a device-writable one"},
	{name: "readable after writable, into an indirect table", sizeLog: 3, indirectOK: true,
		table:    []rawDesc{{0x1000, 4, fWrite | fNext, 1}, {uint64(caseIndirect), 16, fInd, 0}},
		indirect: []rawDesc{{0x2000, 4, 0, 0}}, wantErr: "device-readable buffer after a device-writable one"},
	{name: "readable after writable, inside an indirect table", sizeLog: 3, indirectOK: true,
		table:    []rawDesc{{uint64(caseIndirect), 32, fInd, 0}},
		indirect: []rawDesc{{0x1000, 4, fWrite | fNext, 1}, {0x2000, 4, 0, 0}}, wantErr: "device-readable buffer after"},
	{name: "indirect not negotiated", sizeLog: 3, table: []rawDesc{{uint64(caseIndirect), 16, fInd, 0}},
		indirect: descChain(1, 0), wantErr: "VIRTIO_F_INDIRECT_DESC was not negotiated"},
	{name: "indirect with next", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 16, fInd | fNext, 1}},
		indirect: descChain(1, 0), wantErr: "both INDIRECT and NEXT"},
	{name: "indirect length zero", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 0, fInd, 0}},
		wantErr: "indirect table length 0"},
	{name: "indirect length 17", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 17, fInd, 0}},
		indirect: descChain(2, 0), wantErr: "indirect table length 17"},
	{name: "indirect length 15", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 15, fInd, 0}},
		indirect: descChain(1, 0), wantErr: "indirect table length 15"},
	{name: "indirect larger than the queue", sizeLog: 3, indirectOK: true,
		table: []rawDesc{{uint64(caseIndirect), 16 * 9, fInd, 0}}, indirect: descChain(9, 0),
		wantErr: "indirect table of 9 descriptors is larger than the queue size 8"},
	{name: "indirect table outside RAM", sizeLog: 3, indirectOK: true, table: []rawDesc{{1 << 40, 16, fInd, 0}},
		wantErr: "outside guest RAM"},
	{name: "indirect table past the end of RAM", sizeLog: 3, indirectOK: true,
		table: []rawDesc{{caseRAM - 16, 32, fInd, 0}}, wantErr: "outside guest RAM"},
	{name: "nested indirect", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 32, fInd, 0}},
		indirect: []rawDesc{{0x1000, 4, fNext, 1}, {uint64(caseIndirect), 32, fInd, 0}}, wantErr: "nested INDIRECT"},
	{name: "indirect loop", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 32, fInd, 0}},
		indirect: []rawDesc{{0x1000, 4, fNext, 1}, {0x2000, 4, fNext, 0}}, wantErr: "chain loops"},
	{name: "indirect next out of range", sizeLog: 3, indirectOK: true, table: []rawDesc{{uint64(caseIndirect), 32, fInd, 0}},
		indirect: []rawDesc{{0x1000, 4, fNext, 2}, {0x2000, 4, 0, 0}}, wantErr: "next 2 is not below the table length 2"},
	{name: "direct and indirect longer than the queue", sizeLog: 3, indirectOK: true,
		table:    append(descChain(5, 0)[:4], rawDesc{uint64(caseIndirect), 128, fInd, 0}),
		indirect: descChain(8, 0), wantErr: "longer than the queue size 8"},
}

func TestReadChain(t *testing.T) {
	mem := newTestRAM(t, caseRAM)
	for _, c := range chainCases {
		t.Run(c.name, func(t *testing.T) {
			clear(mustSlice(t, mem, 0, 0x10000))
			if err := mem.WriteAt(c.image(), caseTable); err != nil {
				t.Fatal(err)
			}
			got, _, err := readChain(nil, mem, caseTable, c.size(), c.head, c.indirectOK)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "chain at head") {
					t.Fatalf("error = %v, want one naming the head and saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Head != c.head || len(got.Readable) != c.wantR || len(got.Writable) != c.wantW {
				t.Errorf("chain = %+v, want head %d, %d readable, %d writable", got, c.head, c.wantR, c.wantW)
			}
		})
	}
}

func TestChainLens(t *testing.T) {
	c := Chain{Readable: []Buffer{{0, 3}, {8, ^uint32(0)}}, Writable: []Buffer{{0, 5}}}
	if c.ReadableLen() != 3+(1<<32-1) || c.WritableLen() != 5 || (Chain{}).ReadableLen() != 0 {
		t.Errorf("ReadableLen, WritableLen = %d, %d", c.ReadableLen(), c.WritableLen())
	}
}

// A chain built by the mock driver comes back with its buffers in order.
func TestReadChainBuffers(t *testing.T) {
	for _, indirect := range []bool{false, true} {
		tq := newTestQueue(t, 16, FeatureRingIndirectDesc)
		add := tq.drv.add
		if indirect {
			add = tq.drv.addIndirect
		}
		head := add(readable("ab"), readable("cde"), writable(4), writable(6))
		c := tq.mustPop(t)
		r := c.Readable
		if c.Head != head || len(r) != 2 || r[0].Len != 2 || r[1].Len != 3 || c.WritableLen() != 10 || c.Writable[0].Len != 4 {
			t.Errorf("indirect=%v: chain = %+v", indirect, c)
		}
	}
}

func mustSlice(t testing.TB, mem *memory.RAM, a memory.GuestAddress, n uint64) []byte {
	t.Helper()
	s, err := mem.Slice(a, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
