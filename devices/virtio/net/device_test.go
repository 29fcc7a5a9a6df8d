package net

import (
	"bytes"
	stdnet "net"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/net/tap"
)

func TestConfigSpace(t *testing.T) {
	d := newDevice(newFakeTap(), "fake0", testMAC)
	for _, tc := range []struct {
		offset uint64
		n      int
		want   []byte
	}{
		{cfgMAC, 6, testMAC},
		{cfgStatus, 2, []byte{statusLinkUp, 0}},
		{4, 4, []byte{0x34, 0x56, statusLinkUp, 0}},
		{6, 4, []byte{statusLinkUp, 0, 0, 0}}, // straddles the end
		{configSize, 4, []byte{0, 0, 0, 0}},
		{^uint64(0), 2, []byte{0, 0}},
	} {
		got := bytes.Repeat([]byte{0xee}, tc.n)
		d.ReadConfig(tc.offset, got)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("ReadConfig(%d, %d bytes) = % x; want % x", tc.offset, tc.n, got, tc.want)
		}
	}
	d.WriteConfig(cfgMAC, []byte{1, 2, 3, 4, 5, 6})
	got := make([]byte, 6)
	if d.ReadConfig(cfgMAC, got); !bytes.Equal(got, testMAC) {
		t.Errorf("MAC after a driver write = % x; want it unchanged", got)
	}
}

func TestFeaturesAndQueues(t *testing.T) {
	d := newDevice(newFakeTap(), "fake0", testMAC)
	want := uint64(1<<0 | 1<<1 | 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<11 | 1<<12 | 1<<15 | 1<<16)
	if got := d.Features(); got != want {
		t.Errorf("Features() = %#x; want %#x", got, want)
	}
	if d.Type() != virtio.TypeNet {
		t.Errorf("Type() = %d; want %d", d.Type(), virtio.TypeNet)
	}
	if got := d.QueueMaxSizes(); len(got) != 2 || got[0] != queueSize || got[1] != queueSize {
		t.Errorf("QueueMaxSizes() = %v; want [rx, tx] of %d", got, queueSize)
	}
}

func TestChooseMAC(t *testing.T) {
	a, err := chooseMAC(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := chooseMAC(nil)
	if len(a) != 6 || a[0]&1 != 0 || a[0]&2 == 0 || bytes.Equal(a, b) {
		t.Errorf("random MACs %v, %v: want distinct, unicast, locally administered", a, b)
	}
	if got, err := chooseMAC(testMAC); err != nil || !bytes.Equal(got, testMAC) {
		t.Errorf("chooseMAC(%v) = %v, %v", stdnet.HardwareAddr(testMAC), got, err)
	}
	for _, bad := range []stdnet.HardwareAddr{{1, 2, 3, 4, 5, 6}, {2, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, make([]byte, 8)} {
		if _, err := chooseMAC(bad); err == nil {
			t.Errorf("chooseMAC(%v) accepted", bad)
		}
	}
}

func TestOpenRejectsABadMACBeforeTheTap(t *testing.T) {
	_, err := Open(Options{Tap: "govmm-none", MAC: stdnet.HardwareAddr{1, 0, 0, 0, 0, 1}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("multicast")) {
		t.Fatalf("Open with a multicast MAC = %v; want a multicast error", err)
	}
}

func TestOffloadFollowsGuestFeatures(t *testing.T) {
	for _, tc := range []struct {
		features uint64
		want     tap.Offload
	}{
		{0, 0},
		{featureGuestTSO4 | featureGuestTSO6, 0}, // TSO needs GUEST_CSUM (§5.1.3.1)
		{featureCsum | featureHostTSO4, 0},       // host offloads need nothing of the tap
		{featureGuestCsum, tap.OffloadCsum},
		{featureGuestCsum | featureGuestTSO4 | featureGuestTSO6 | featureGuestECN,
			tap.OffloadCsum | tap.OffloadTSO4 | tap.OffloadTSO6 | tap.OffloadTSOECN},
	} {
		b := newBench(t)
		b.activate(tc.features)
		if got := b.tap.Offload(); got != tc.want {
			t.Errorf("features %#x: tap offload %#x; want %#x", tc.features, got, tc.want)
		}
	}
}

func TestActivateTwiceFails(t *testing.T) {
	b := newBench(t)
	b.activate(0)
	err := b.dev.Activate(virtio.Activation{Mem: b.mem, Queues: []*virtio.Queue{nil, nil}})
	if err == nil {
		t.Fatal("second Activate without a reset succeeded")
	}
}

func TestResetNeverActivatedAndClose(t *testing.T) {
	ft := newFakeTap()
	d := newDevice(ft, "fake0", testMAC)
	d.Reset()
	if err := d.Close(); err != nil || !ft.closed {
		t.Fatalf("Close = %v, tap closed %v", err, ft.closed)
	}
}

// TestResetStopsBlockedWorkers resets while the receiver waits on the tap and
// while it holds a packet waiting for buffers, then serves fresh queues.
func TestResetStopsBlockedWorkers(t *testing.T) {
	b := newBench(t)
	b.activate(featureMrgRxbuf)
	time.Sleep(20 * time.Millisecond) // let the workers block
	resetWithin(t, b.dev, time.Second)

	b.newQueues()
	b.activate(featureMrgRxbuf)
	b.tap.rx <- packet(0, 100)
	time.Sleep(20 * time.Millisecond) // the receiver now holds it, with no buffers
	resetWithin(t, b.dev, time.Second)

	b.newQueues()
	b.activate(featureMrgRxbuf)
	c := b.rx.AddChain(nil, []uint32{2048})
	b.rx.Kick()
	b.tap.rx <- packet(0, 60)
	if u := b.rx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != hdrLen+60 {
		t.Fatalf("after two resets: used %+v; want head %d, %d bytes", u, c.Head, hdrLen+60)
	}
}

func resetWithin(t *testing.T, d *Device, limit time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { d.Reset(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("Reset still blocked after %v", limit)
	}
}
