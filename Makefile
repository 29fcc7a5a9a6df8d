# govmm's build, test and demo entry points. `make demo` and `make test` work
# on a fresh Debian bookworm machine: they install what they need (Debian
# packages, Go itself, the Debian kernels, Go modules) and cache downloads in
# $(CACHE).
# Boot tests run on /dev/kvm when it runs guests at hardware speed, otherwise
# inside the nested-KVM sandbox (tests/sandbox); GOVMM_SANDBOX=1 forces it.
# The sandbox's kernel and QEMU are fetched only where it runs.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/govmm
export GOVMM_CACHE := $(CACHE)

# The go command: bin/go links to the go on PATH if it is Go 1.21 or later,
# else to Debian's from bookworm-backports (tests/fetch-go.sh); either
# fetches the release go.mod names through the Go module proxy
# (GOTOOLCHAIN=auto). GO=... on the command line uses another go.
GO_LINK := $(CURDIR)/bin/go
GO ?= $(GO_LINK)

# Debian packages: what fetching Go needs; what every target needs (the
# network boot tests make their taps with iproute2's ip); what the unit
# tests add (iasl checks the ACPI tables); what the nested-KVM sandbox's
# QEMU (built for bookworm, unpacked from bookworm-backports) links against
# and the benchmark runs, which bookworm's QEMU brings; the container
# runtimes govmm compare measures against and the bundle boot tests run
# (bookworm's runc 1.1 and crun 1.8); what builds the compare bundle.
APT_GO_PACKAGES := ca-certificates
APT_PACKAGES := $(APT_GO_PACKAGES) busybox-static cpio e2fsprogs xz-utils lzop zstd gcc libc6-dev procps iproute2
APT_UNIT_PACKAGES := acpica-tools
APT_QEMU_PACKAGES := qemu-system-x86
APT_CONTAINER_PACKAGES := runc crun
# what govmm compare runs on the host against each instance (iperf3 client)
APT_COMPARE_PACKAGES := iperf3
APT_BUNDLE_PACKAGES := mmdebstrap
GUEST_TREE := $(CACHE)/kernel-cloud
SANDBOX_TREE := $(CACHE)/kernel-std
# The sandbox's own QEMU, from bookworm-backports (tests/fetch-qemu.sh says why).
SANDBOX_QEMU := $(CACHE)/qemu-sandbox
SANDBOX := bin/sandbox -qemu-tree $(SANDBOX_QEMU) -kernel-tree $(SANDBOX_TREE)
KERNEL := $(GUEST_TREE)/vmlinuz
INITRD := $(CACHE)/guest/initramfs.cpio.gz
GUEST_INIT := $(CACHE)/guest/init
# The ext4 root file system image for `root=/dev/vda` boots: the initramfs's
# tree (the same init as /init and /sbin/init, busybox, the virtio modules,
# the payload), built with e2fsprogs' mke2fs -d, which needs no root. The
# cloud kernel has ext4 built in but virtio_blk as a module, so such a boot
# still takes the initramfs: its init loads the modules, mounts root= and
# switches to it (guest/init/root.go).
ROOTFS := $(CACHE)/guest/rootfs.ext4
ROOTFS_DIR := $(CACHE)/guest/rootfs.d
ROOTFS_SIZE ?= 64M
MKE2FS ?= /sbin/mke2fs
# The OCI bundle govmm compare runs under govmm, QEMU, runc and crun: a
# minimal Debian bookworm with fio, iperf3 and stress-ng
# (tests/compare-bundle.sh). Its config.json runs `echo ready`; govmm compare
# sets each measure's command itself. The tables go to COMPARE_OUT.
COMPARE_BUNDLE := $(CACHE)/compare-bundle
COMPARE_OUT ?= compare-out/
# More flags for govmm compare, e.g. COMPARE_FLAGS="--runs 5 --only start,memory".
# Three runs keep a full comparison inside the sandbox's hour.
COMPARE_FLAGS ?= --runs 3
GUEST_SOURCES := $(shell find guest -name '*.go') go.mod go.sum

# govmm is built static (pflag pulls in net, which would otherwise map libc
# and its resolver into every VMM) and with the heap on small pages: where
# transparent huge pages are "always", the Go heap's first 2 MiB page alone
# would be half the VMM's 5 MiB memory budget. Guest RAM still asks for huge
# pages itself. (disablethp is a runtime GODEBUG that //go:debug does not
# accept, hence the linker default.)
GOVMM_LDFLAGS := -X runtime.godebugDefault=disablethp=1

# make test bounds each target by executions, not time: a timed -fuzztime
# can fail with a bare "context deadline exceeded" on a loaded machine, a
# race in Go's fuzz coordinator (golang/go#75804, fixed in Go 1.27).
FUZZTIME_TEST ?= 100000x
# make fuzz runs every target for ten million executions.
FUZZTIME ?= 10000000x
BENCH_RUNS ?= 5
# I/O rounds: each boots every system once and pairs their phases. Single
# runs in the sandbox vary by ±30 %; an even count has each system go first
# equally often.
BENCH_IO_RUNS ?= 8
DEMO_MEMORY ?= 512M
DEMO_CPUS ?= 2

# What the boot tests are told; paths are absolute because the sandbox runs
# them from the same directory through a 9p view of /.
BOOT_ENV := GOVMM_BIN=$(CURDIR)/bin/govmm GOVMM_KERNEL=$(KERNEL) GOVMM_INITRD=$(INITRD) \
	GOVMM_PAYLOAD_SHA256_FILE=$(INITRD).payload.sha256 GOVMM_ROOTFS=$(ROOTFS) GOVMM_REQUIRE_KVM=1 \
	GOVMM_BUNDLE_PROBE=$(CURDIR)/bin/bundleprobe

# Where the boot tests, the demo and the benchmark run: on this machine's
# /dev/kvm if bin/kvmprobe finds it runs guests at hardware speed and
# GOVMM_SANDBOX is not 1, else in the sandbox. (KVMPROBE=true or false
# overrides the probe, for a dry run with make -n.)
KVMPROBE ?= bin/kvmprobe
ON_KVM = { [ "$$GOVMM_SANDBOX" != 1 ] && $(KVMPROBE); }

.PHONY: soak kvm-group all deps deps-go deps-unit deps-qemu deps-containers deps-bundle deps-compare go kernel sandbox-kernel sandbox-qemu sandbox-if-needed initramfs rootfs compare-bundle build unit fuzz-smoke boot-test test demo bench compare fuzz clean distclean

all: build

# apt-install installs the Debian packages in $(1) that are not installed.
define apt-install
	@missing=$$(for p in $(1); do [ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = installed ] || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "== installing Debian packages:" $$missing; \
		sudo= ; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt-install,$(APT_PACKAGES))
deps-go:
	$(call apt-install,$(APT_GO_PACKAGES))
deps-unit:
	$(call apt-install,$(APT_UNIT_PACKAGES))
deps-qemu:
	$(call apt-install,$(APT_QEMU_PACKAGES))
deps-containers:
	$(call apt-install,$(APT_CONTAINER_PACKAGES))
deps-bundle:
	$(call apt-install,$(APT_BUNDLE_PACKAGES))
deps-compare:
	$(call apt-install,$(APT_COMPARE_PACKAGES))

# Every target that runs $(GO) has `| go`.
go: | deps-go
	@if [ "$(GO)" = "$(GO_LINK)" ] && [ ! -x "$(GO_LINK)" ]; then \
		mkdir -p bin && go=$$(tests/fetch-go.sh) && ln -sfn "$$go" $(GO_LINK) && $(GO_LINK) version; \
	fi

$(GUEST_TREE)/.package: | deps
	tests/fetch-kernel.sh linux-image-cloud-amd64 $(GUEST_TREE)

$(SANDBOX_TREE)/.package: | deps
	tests/fetch-kernel.sh linux-image-amd64 $(SANDBOX_TREE)

$(SANDBOX_QEMU)/.packages: | deps deps-qemu
	tests/fetch-qemu.sh $(SANDBOX_QEMU)

kernel: $(GUEST_TREE)/.package
sandbox-kernel: $(SANDBOX_TREE)/.package
sandbox-qemu: $(SANDBOX_QEMU)/.packages

# The sandbox's kernel and QEMU, where the boot tests, the demo or the
# benchmark will run in it.
sandbox-if-needed: build
	@if ! $(ON_KVM) >/dev/null 2>&1; then $(MAKE) --no-print-directory sandbox-kernel sandbox-qemu kvm-group; fi

# The sandbox gives its /dev/kvm to the host's kvm group, as Debian's udev
# does (the boot tests run govmm as a user in it): make the group if the
# host has none.
kvm-group:
	@getent group kvm >/dev/null || groupadd --system kvm

$(GUEST_INIT): $(GUEST_SOURCES) | go
	@mkdir -p $(dir $@)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./guest/init

$(INITRD): $(GUEST_TREE)/.package $(GUEST_INIT) $(GUEST_SOURCES) | deps go
	$(GO) run ./guest/mkinitramfs -o $@ -init $(GUEST_INIT) -modules $(GUEST_TREE) -busybox /bin/busybox

initramfs: $(INITRD)

# The image is cached and shared: boot it read-only (the default without rw
# on the command line) or boot a copy.
$(ROOTFS): $(GUEST_TREE)/.package $(GUEST_INIT) $(GUEST_SOURCES) | deps go
	rm -rf $(ROOTFS_DIR) $@.tmp
	$(GO) run ./guest/mkinitramfs -dir $(ROOTFS_DIR) -init $(GUEST_INIT) -modules $(GUEST_TREE) -busybox /bin/busybox
	$(MKE2FS) -q -t ext4 -L govmm-root -d $(ROOTFS_DIR) -F $@.tmp $(ROOTFS_SIZE)
	rm -rf $(ROOTFS_DIR)
	mv $@.tmp $@

rootfs: $(ROOTFS)

# The script keeps a bundle its own content built (its .stamp) and swaps a
# new one in whole; `runc spec` writes config.json.
$(COMPARE_BUNDLE)/.stamp: tests/compare-bundle.sh | deps deps-bundle deps-containers
	tests/compare-bundle.sh $(COMPARE_BUNDLE)

compare-bundle: $(COMPARE_BUNDLE)/.stamp

build: | go
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -ldflags "$(GOVMM_LDFLAGS)" -o bin/govmm ./cmd/govmm
	CGO_ENABLED=0 $(GO) build -o bin/govmm-compare ./cmd/govmm/compare
	$(GO) build -o bin/sandbox ./tests/sandbox
	$(GO) build -o bin/kvmprobe ./tests/kvmprobe
	$(GO) build -o bin/bench ./tests/bench
	CGO_ENABLED=0 $(GO) build -o bin/bundleprobe ./tests/bundleprobe
	$(GO) test -c -o bin/boot.test ./tests/boot
	$(GO) test -c -o bin/powercut.test ./tests/powercut
	$(GO) test -c -o bin/kvm.test ./kvm
	$(GO) test -c -o bin/machine.test ./internal/machine

# Everything that needs no KVM (the race detector needs cgo, hence gcc); the
# boot tests are the next step. GOVMM_REQUIRE_IASL=1: the ACPI test that
# needs iasl fails rather than skips without it.
unit: deps deps-unit | go
	$(GO) vet ./...
	@unformatted=$$($$($(GO) env GOROOT)/bin/gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	GOVMM_REQUIRE_IASL=1 $(GO) test -race $$($(GO) list ./... | grep -v -e /tests/boot$$ -e /tests/powercut$$)
	@# without -race: its runtime makes calls a seccomp filter forbids, and cgo keeps capabilities per thread
	GOVMM_REQUIRE_SECCOMP=1 $(GO) test -count=1 ./internal/seccomp ./internal/caps

# FUZZ_TARGETS runs only the targets it names, a name or package:name
# each: make fuzz FUZZ_TARGETS='FuzzXZ ./devices:FuzzBus'. Ten million
# executions of every target take hours, so a run can be split in parts
# or resumed with what is left (docs/fuzzing.md). Unset, all run.
fuzz-smoke: | go
	FUZZ_TARGETS="$(FUZZ_TARGETS)" GO=$(GO) tests/fuzz.sh $(FUZZTIME_TEST)

fuzz: | go
	FUZZ_TARGETS="$(FUZZ_TARGETS)" GO=$(GO) tests/fuzz.sh $(FUZZTIME)

# The tests of the kvm package and of the root package (irqfd, ioeventfd and
# GSI routing) against real KVM, then the boot tests, on whichever
# KVM can run them. They never skip here: GOVMM_REQUIRE_KVM=1. In the
# sandbox, a run whose sandbox kernel dies resumes where it was (twice at
# most) from what GOVMM_BOOT_STATE recorded; 45 minutes bound it all. Only
# there is a failed boot test rerun; the FLAKY summary comes last, printed
# here on the host (tests/flaky-summary.sh).
boot-test: build kernel initramfs rootfs sandbox-if-needed deps-containers deps-qemu
	@state=$$(mktemp -d -t govmm-boot-state.XXXXXX); \
	if $(ON_KVM); then \
		echo "== boot tests on this machine's /dev/kvm"; \
		echo "== not run here: the power-cut durability test (tests/powercut), which needs the sandbox: GOVMM_SANDBOX=1 runs it"; \
		env -u GOVMM_IN_SANDBOX $(BOOT_ENV) GOVMM_BOOT_STATE=$$state tests/boot-tests.sh; \
		status=$$?; \
	else \
		echo "== boot tests inside the nested-KVM sandbox (QEMU TCG with SVM, Debian kernel, / over 9p)"; \
		$(SANDBOX) -timeout 45m -retries 2 -- env $(BOOT_ENV) GOVMM_BOOT_STATE=$$state tests/boot-tests.sh; \
		status=$$?; \
		if [ $$status = 0 ]; then \
			echo "== durability: the sandbox's power is cut after the guest's acknowledged flushes (tests/powercut)"; \
			env $(BOOT_ENV) GOVMM_SANDBOX_CMD="$(CURDIR)/$(SANDBOX)" bin/powercut.test -test.v -test.timeout 20m || status=$$?; \
		fi; \
	fi; \
	tests/flaky-summary.sh "$$state" || status=1; \
	rm -rf "$$state"; exit $$status

test: unit fuzz-smoke boot-test

demo: build kernel initramfs sandbox-if-needed
	@args="run --kernel $(KERNEL) --initrd $(INITRD) --memory $(DEMO_MEMORY) --cpus $(DEMO_CPUS) \
		--cmdline 'console=ttyS0 reboot=k,panic_warm panic=-1 quiet govmm.exit=shell'"; \
	if $(ON_KVM) >/dev/null; then \
		echo "== demo on this machine's /dev/kvm: a shell in the guest; poweroff or Ctrl-A x ends it"; \
		eval bin/govmm $$args || status=$$?; \
	else \
		echo "== no usable /dev/kvm here: running the demo inside the nested-KVM sandbox (everything is emulated, expect a slow boot)"; \
		echo "== a shell in the guest; poweroff or Ctrl-A x ends it"; \
		eval $(SANDBOX) -interactive -- bin/govmm $$args || status=$$?; \
	fi; \
	case $${status:-0} in \
		0|5) echo "== demo over";; \
		*) echo "== govmm exited with status $$status (see govmm run --help)"; exit $$status;; \
	esac

bench: build kernel initramfs sandbox-if-needed deps-qemu
	@if $(ON_KVM) >/dev/null; then \
		bin/bench -runs $(BENCH_RUNS) -io-runs $(BENCH_IO_RUNS) -exit-detail -govmm bin/govmm -kernel $(KERNEL) -initrd $(INITRD); \
	else \
		echo "== benchmark inside the nested-KVM sandbox: compare ratios, not absolute times"; \
		$(SANDBOX) -timeout 90m -- bin/bench -runs $(BENCH_RUNS) -io-runs $(BENCH_IO_RUNS) -exit-detail -govmm bin/govmm -kernel $(KERNEL) -initrd $(INITRD); \
	fi

# The soak: the boot tests' short soak run long: 1,000 VMs built, booted
# and torn down in one library process, 16 VMs at once doing disk and
# network I/O for ten minutes, and govmm SIGKILLed 150 times while guests
# write and flush 1,000 acknowledged records through each aio path (50
# kills each; a boot takes about 10 s in the sandbox). Not in make test:
# too long.
SOAK_CYCLES ?= 1000
SOAK_VMS ?= 16
SOAK_SECONDS ?= 600
SOAK_KILLS ?= 150
SOAK_WRITES ?= 1000
# The sandbox's RAM for the soak: with its default 6 GiB, 16 guests doing
# I/O fill its memory, and twice its kernel overflowed a stack in the
# KVM_RUN path about 14 minutes in (docs/sandbox.md); with 16 GiB the same
# run passed.
SOAK_SANDBOX_MIB ?= 16384
soak: build kernel initramfs sandbox-if-needed
	@$(GO) test -c -o bin/boot.test ./tests/boot
	@run="cd tests/boot && env $(BOOT_ENV) GOVMM_SOAK_CYCLES=$(SOAK_CYCLES) GOVMM_SOAK_VMS=$(SOAK_VMS) GOVMM_SOAK_SECONDS=$(SOAK_SECONDS) GOVMM_SOAK_KILLS=$(SOAK_KILLS) GOVMM_SOAK_WRITES=$(SOAK_WRITES) $(CURDIR)/bin/boot.test -test.v -test.timeout 150m -test.run '^(TestBootCyclesLeakNothing|TestVMsAtOnceKeepTheirData|TestAckedRecordsSurviveSIGKILL)\$$'"; \
	if $(ON_KVM) >/dev/null; then \
		sh -c "$$run"; \
	else \
		echo "== soak inside the nested-KVM sandbox"; \
		$(SANDBOX) -memory $(SOAK_SANDBOX_MIB) -timeout 160m -- sh -c "$$run"; \
	fi

# The same bundle under govmm, QEMU, runc and crun: start-up, memory, density,
# CPU, syscalls, disk and network (cmd/govmm/internal/compare). In the
# sandbox all four run inside it, runc and crun on its cgroup2; when the
# sandbox's kernel dies under it (many VMs at once make that likelier), it
# is run again and resumes from its journal in COMPARE_OUT.
compare: build kernel initramfs compare-bundle sandbox-if-needed deps-containers deps-qemu deps-compare
	@args="compare --bundle $(COMPARE_BUNDLE) --kernel $(KERNEL) --initrd $(INITRD) --out $(COMPARE_OUT) $(COMPARE_FLAGS)"; \
	if $(ON_KVM) >/dev/null; then \
		echo "== compare on this machine's /dev/kvm: govmm, QEMU, runc and crun here"; \
		bin/govmm $$args; \
	else \
		echo "== compare inside the nested-KVM sandbox: govmm, QEMU, runc and crun all in it; compare ratios, not absolute times"; \
		$(SANDBOX) -timeout 180m -retries 3 -- bin/govmm $$args; \
	fi

clean:
	rm -rf bin

# Also forget the cached kernels, QEMU, images and sandbox (not the .deb files).
distclean: clean
	rm -rf $(GUEST_TREE) $(SANDBOX_TREE) $(SANDBOX_QEMU) $(CACHE)/guest $(CACHE)/sandbox $(CACHE)/go-bootstrap $(CACHE)/backports-apt $(COMPARE_BUNDLE)
