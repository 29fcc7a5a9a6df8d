// Command kvmprobe tells the Makefile whether this machine's /dev/kvm can run
// the boot tests directly. Opening /dev/kvm is not enough: some clouds offer
// a paravirtual KVM (kvm_pvm) that runs guest code about a thousand times
// slower, where a Debian kernel never finishes decompressing. So the probe
// times a small guest loop and calls KVM usable only if it runs at hardware
// speed.
//
// Exit status 0: usable; 1: not usable (the reason is printed).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// loop is 16-bit real-mode code: count ECX down from 1<<22, then HLT.
var loop = []byte{
	0x66, 0xb9, 0x00, 0x00, 0x40, 0x00, // mov ecx, 0x400000
	0x66, 0x49, // dec ecx
	0x75, 0xfc, // jnz dec
	0xf4, // hlt
}

const (
	codeAddr = 0x1000
	// Hardware runs the loop in a few milliseconds and the nested sandbox in
	// tens; kvm_pvm needs seconds.
	defaultLimit = time.Second
)

func main() {
	dev := flag.String("kvm", "/dev/kvm", "KVM device to probe")
	limit := flag.Duration("limit", defaultLimit, "slowest acceptable time for the guest loop")
	flag.Parse()
	took, err := probe(*dev, *limit)
	if err != nil {
		fmt.Printf("kvmprobe: %s is not usable for boot tests: %v\n", *dev, err)
		os.Exit(1)
	}
	fmt.Printf("kvmprobe: %s is usable: %d guest loop iterations in %v\n", *dev, 1<<22, took.Round(time.Microsecond))
}

var errTooSlow = errors.New("too slow")

func probe(dev string, limit time.Duration) (time.Duration, error) {
	sys, err := kvm.Open(dev)
	if err != nil {
		return 0, err
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		return 0, err
	}
	defer vm.Close()
	// Intel without unrestricted guest needs these for real mode.
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		return 0, err
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		return 0, err
	}
	ram, err := memory.New(2 * memory.MiB)
	if err != nil {
		return 0, err
	}
	defer ram.Close()
	for slot, m := range ram.Mappings() {
		if err := vm.SetUserMemoryRegion(uint32(slot), uint64(m.Guest), m.Size, m.Host); err != nil {
			return 0, err
		}
	}
	if err := ram.WriteAt(loop, codeAddr); err != nil {
		return 0, err
	}
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		return 0, err
	}
	defer cpu.Close()
	s, err := cpu.Sregs()
	if err != nil {
		return 0, err
	}
	s.CS.Base, s.CS.Selector = 0, 0
	if err := cpu.SetSregs(&s); err != nil {
		return 0, err
	}
	if err := cpu.SetRegs(&kvm.Regs{RIP: codeAddr, RFLAGS: 2}); err != nil {
		return 0, err
	}

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- runToHLT(cpu) }()
	select {
	case err := <-done:
		took := time.Since(start)
		if err != nil {
			return took, err
		}
		if took > limit {
			return took, fmt.Errorf("%w: the guest loop took %v, over %v (a paravirtual KVM such as kvm_pvm?); the boot tests will use the sandbox", errTooSlow, took.Round(time.Millisecond), limit)
		}
		return took, nil
	case <-time.After(10 * limit):
		// The vCPU thread is left running; exiting the process ends it.
		return 0, fmt.Errorf("%w: the guest loop did not finish in %v (a paravirtual KVM such as kvm_pvm?); the boot tests will use the sandbox", errTooSlow, 10*limit)
	}
}

func runToHLT(cpu *kvm.VCPU) error {
	for {
		err := cpu.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			continue
		}
		if err != nil {
			return err
		}
		if e := cpu.Exit(); e.Reason != kvm.ExitHLT {
			return fmt.Errorf("guest loop ended with exit %v, want HLT", e.Reason)
		}
		return nil
	}
}
