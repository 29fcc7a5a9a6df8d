package vcpu

import (
	"fmt"

	"github.com/govmm/govmm/kvm"
)

// Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3A, 10.5.1).
const (
	lapicLVTLINT0   = 0x350
	lapicLVTLINT1   = 0x360
	lvtModeMask     = 0x700
	lvtModeExtINT   = 0x700
	lvtModeNMI      = 0x400
	lvtMasked       = 1 << 16
	fpuControlWord  = 0x37f  // FNINIT default
	fpuMXCSRDefault = 0x1f80 // all SSE exceptions masked
)

// configure puts a fresh vCPU in its boot state.
func configure(cpu *kvm.VCPU, id int, s Setup) error {
	tscKHz, err := cpu.TSCKHz()
	if err != nil {
		return err
	}
	if err := cpu.SetCPUID(CPUID(s.SupportedCPUID, id, s.Count, tscKHz)); err != nil {
		return err
	}
	if len(s.MSRs) > 0 {
		if err := cpu.SetMSRs(s.MSRs); err != nil {
			return err
		}
	}
	if err := cpu.SetFPU(&kvm.FPU{FCW: fpuControlWord, MXCSR: fpuMXCSRDefault}); err != nil {
		return err
	}
	if err := wireLINTs(cpu); err != nil {
		return err
	}
	if s.Sregs != nil {
		sregs, err := cpu.Sregs()
		if err != nil {
			return err
		}
		s.Sregs(&sregs)
		if err := cpu.SetSregs(&sregs); err != nil {
			return err
		}
	}
	if s.Regs != nil {
		return cpu.SetRegs(s.Regs)
	}
	return nil
}

// wireLINTs routes LINT0 to the 8259 PIC (ExtINT) and LINT1 to NMI, the
// virtual-wire wiring firmware leaves for the OS on a PC.
func wireLINTs(cpu *kvm.VCPU) error {
	st, err := cpu.LAPIC()
	if err != nil {
		return err
	}
	st.SetReg(lapicLVTLINT0, st.Reg(lapicLVTLINT0)&^lvtModeMask|lvtModeExtINT|lvtMasked)
	st.SetReg(lapicLVTLINT1, st.Reg(lapicLVTLINT1)&^lvtModeMask|lvtModeNMI)
	if err := cpu.SetLAPIC(&st); err != nil {
		return fmt.Errorf("set LAPIC LINT0/LINT1: %w", err)
	}
	return nil
}
