package boot

import "github.com/govmm/govmm/memory"

// Where the loader puts things in low memory (all below the EBDA at 0x9fc00).
const (
	gdtAddr      memory.GuestAddress = 0x500
	idtAddr      memory.GuestAddress = gdtAddr + gdtSize // after the GDT, not over its TSS entry
	zeroPageAddr memory.GuestAddress = 0x7000
	stackTop     memory.GuestAddress = 0x8ff0
	pml4Addr     memory.GuestAddress = 0x9000
	pdptAddr     memory.GuestAddress = 0xa000
	pdAddr       memory.GuestAddress = 0xb000 // four page directories: 4 GiB of 2 MiB pages
	pdCount                          = 4
	cmdlineAddr  memory.GuestAddress = 0x20000
	lowKernel    memory.GuestAddress = 0x100000 // 1 MiB: where a non-relocatable kernel goes
	zeroPageSize                     = 0x1000
	pageSize                         = 0x1000
	hugePageSize                     = 2 << 20
)

// Zero page (struct boot_params) fields outside the setup header
// (Documentation/arch/x86/zero-page.rst).
const (
	zpACPIRSDPAddr    = 0x070
	zpExtRamdiskImage = 0x0c0
	zpExtRamdiskSize  = 0x0c4
	zpExtCmdLinePtr   = 0x0c8
	zpE820Entries     = 0x1e8
	zpE820Table       = 0x2d0
	e820EntrySize     = 20
	e820MaxEntries    = 128
)

// Boot protocol values the loader sets.
const (
	loaderUndefined    = 0xff // type_of_loader: not a registered boot loader
	loadFlagCanUseHeap = 0x80
	heapEnd            = 0xfe00
	minRSDPVersion     = 0x020e // acpi_rsdp_addr appeared in protocol 2.14
	entry64Offset      = 0x200  // the 64-bit entry is 512 bytes into the protected-mode kernel
)

// GDT layout: the boot protocol wants __BOOT_CS at 0x10 and __BOOT_DS at 0x18.
// A 64-bit TSS descriptor takes two slots (Intel SDM vol. 3A, 8.2.3), the
// second holding base bits 63:32, zero here.
const (
	selCode = 0x10
	selData = 0x18
	selTSS  = 0x20
	gdtSize = selTSS + 16
	gdtCode = 0x00af9b000000ffff // 64-bit code, present, execute/read, 4 GiB
	gdtData = 0x00cf93000000ffff // data, present, read/write, 4 GiB
	gdtTSS  = 0x008f8b000000ffff // busy 64-bit TSS
)

// Control register bits (Intel SDM vol. 3A, 2.5; EFER 2.2.1).
const (
	cr0PE   = 1 << 0
	cr0ET   = 1 << 4
	cr0NE   = 1 << 5
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
	eferLME = 1 << 8
	eferLMA = 1 << 10

	pagePresent = 1 << 0
	pageWrite   = 1 << 1
	pageHuge    = 1 << 7
)
