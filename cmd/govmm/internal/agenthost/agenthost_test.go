package agenthost

import (
	"testing"

	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
	"github.com/govmm/govmm/guest/agent"
)

func TestKernelCmdlineNamesThePorts(t *testing.T) {
	got := KernelCmdline("console=ttyS0")
	if want := "console=ttyS0 govmm.agent=hvc0,hvc1,hvc2"; got != want {
		t.Fatalf("KernelCmdline = %q, want %q", got, want)
	}
}

func TestProcessTakesTheTerminalSize(t *testing.T) {
	b := &bundle.Bundle{Process: agent.Process{Args: []string{"sh"}, Terminal: true, ConsoleSize: &agent.Size{Rows: 1, Cols: 2}}}
	if p := Process(b, nil); p.ConsoleSize.Rows != 1 {
		t.Fatalf("without a size: %+v, want the spec's", p.ConsoleSize)
	}
	if p := Process(b, &agent.Size{Rows: 40, Cols: 120}); p.ConsoleSize.Rows != 40 || p.ConsoleSize.Cols != 120 {
		t.Fatalf("with a size: %+v, want 40x120", p.ConsoleSize)
	}
	if b.Process.ConsoleSize.Rows != 1 {
		t.Fatal("Process changed the bundle's")
	}
}
