package machine

import (
	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm"
)

// entryRegs and entrySregs turn the boot protocol's entry state into the boot
// vCPU's registers.
func entryRegs(e *boot.Entry) *kvm.Regs {
	return &kvm.Regs{RIP: e.RIP, RSP: e.RSP, RBP: e.RSP, RSI: e.RSI, RBX: e.RBX, RFLAGS: e.RFLAGS}
}

func entrySregs(e *boot.Entry) func(*kvm.Sregs) {
	return func(s *kvm.Sregs) {
		s.CS = segment(e.CS)
		data := segment(e.DS)
		s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
		s.TR = segment(e.TR)
		s.GDT = kvm.DTable{Base: e.GDTBase, Limit: e.GDTLimit}
		s.IDT = kvm.DTable{Base: e.IDTBase, Limit: e.IDTLimit}
		s.CR0, s.CR3, s.CR4, s.EFER = e.CR0, e.CR3, e.CR4, e.EFER
	}
}

func segment(s boot.Segment) kvm.Segment {
	return kvm.Segment{
		Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type,
		Present: s.Present, DPL: s.DPL, DB: s.DB, S: s.S, L: s.L, G: s.G,
	}
}
