package govmm

import (
	"errors"

	"github.com/govmm/govmm/internal/machine"
)

// VM is a configured microVM, ready to Run once.
type VM struct {
	m   *machine.Machine
	ran bool
}

// New checks cfg, opens KVM, maps guest memory, loads the kernel and wires the
// devices. Call Run, or Close to release everything without running.
func New(cfg Config) (*VM, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := machine.New(cfg.machine())
	if err != nil {
		var lim *machine.CPULimitError
		if errors.As(err, &lim) {
			return nil, &FieldError{"cpus", lim.Error()}
		}
		return nil, err
	}
	return &VM{m: m}, nil
}

// machine is the machine's view of a validated c with its defaults.
func (c Config) machine() machine.Config {
	mc := machine.Config{
		Kernel: c.Kernel, Initrd: c.Initrd, Cmdline: c.Cmdline,
		Memory: c.Memory, CPUs: c.CPUs, Console: c.Console,
		VirtioConsole: c.ConsoleDevice == VirtioConsole,
		KVMDevice:     c.KVMDevice,
		Boot:          machine.BootPath(c.Boot),
		KernelCache:   c.KernelCache,
	}
	if c.Confine != nil {
		mc.Confine = &machine.Confine{
			Seccomp: !c.Confine.NoSeccomp, Files: c.Confine.Files,
			Ioctls: c.Confine.Ioctls, KillStatus: c.Confine.KillStatus,
		}
	}
	for _, d := range c.Disks {
		mc.Disks = append(mc.Disks, d.machine())
	}
	for _, n := range c.NICs {
		mc.NICs = append(mc.NICs, n.machine())
	}
	for _, p := range c.Ports {
		mc.Ports = append(mc.Ports, p.machine())
	}
	return mc
}

// HugePages says why the host did not back guest RAM with transparent huge
// pages, or nil if it did. The guest runs either way, slower without them:
// every guest page walk then ends in 4 KiB host pages.
func (v *VM) HugePages() error { return v.m.HugePages() }

// ConsoleInput queues bytes for the guest's console, as if typed.
func (v *VM) ConsoleInput(p []byte) { v.m.ConsoleInput(p) }

// Close releases KVM, guest memory and every fd. Run calls it on return.
func (v *VM) Close() error { return v.m.Close() }
