// Package powercut holds the test that a flush govmm acknowledged reached
// stable storage, not a page cache: govmm serves its guest disk images
// that live on the nested-KVM sandbox's own disk, the guest writes records
// and flushes each, and once it reports them acknowledged the sandbox's
// power is cut (its QEMU stops at once, from inside). What was only in the
// sandbox's page cache is gone; every acknowledged record must be in the
// disk's file on the host.
//
// `make test` runs it after the boot tests when they run in the sandbox:
// on a host whose own KVM runs the boot tests there is no sandbox whose
// power can be cut, and only the boot tests' SIGKILL test (govmm itself
// holds back no write) runs there.
package powercut
