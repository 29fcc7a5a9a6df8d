// Package agenthost is the host's side of the agent protocol (guest/agent)
// for a bundle's process: the guest's names of the ports, the kernel
// command line that puts the guest's init in agent mode, the process
// message, and the session that runs the process over the control port.
// govmm run --bundle and govmm compare's classic VM both use it.
package agenthost

import (
	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
	"github.com/govmm/govmm/guest/agent"
)

// Ports are the guest's names of the three agent ports: the serial
// console stays the guest's console (a crash log), so the ports are
// hvc0..hvc2, the first three virtio consoles in the order the VM has
// them.
var Ports = agent.Ports{Control: "hvc0", Stdout: "hvc1", Stderr: "hvc2"}

// Cmdline boots quietly: the serial console is only read when the guest
// crashes, and every byte it prints costs the vCPU an exit.
const Cmdline = "console=ttyS0 reboot=k,panic_warm panic=-1 quiet loglevel=3"

// KernelCmdline is base with the parameter that puts the guest's init in
// agent mode on Ports.
func KernelCmdline(base string) string {
	return base + " " + agent.Param + "=" + Ports.String()
}

// Process is the message that tells the guest what to run: the bundle's
// process, on a terminal of size when the process has one and size is
// known.
func Process(b *bundle.Bundle, size *agent.Size) agent.Process {
	p := b.Process
	if size != nil {
		p.ConsoleSize = size
	}
	return p
}
