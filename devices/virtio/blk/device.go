// Package blk is the virtio block device (virtio 1.2 §5.2) backed by a raw
// image file: read, write, flush, GET_ID, discard and write-zeroes, read-only
// disks, and two request queues served concurrently. A chain becomes a
// validated request (request.go) before anything touches the file. Each
// queue is served through io_uring (uring.go) or by one goroutine making the
// calls itself (worker.go); IOMode says which.
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
)

// Device feature bits (virtio 1.2 §5.2.3).
const (
	featureSegMax      = 1 << 2
	featureRO          = 1 << 5
	featureBlkSize     = 1 << 6
	featureFlush       = 1 << 9
	featureMQ          = 1 << 12
	featureDiscard     = 1 << 13
	featureWriteZeroes = 1 << 14
)

// Configuration space offsets (§5.2.4, struct virtio_blk_config).
const (
	cfgCapacity               = 0  // le64, in 512-byte sectors
	cfgSegMax                 = 12 // le32
	cfgBlkSize                = 20 // le32
	cfgNumQueues              = 34 // le16
	cfgMaxDiscardSectors      = 36 // le32
	cfgMaxDiscardSeg          = 40 // le32
	cfgDiscardSectorAlignment = 44 // le32
	cfgMaxWriteZeroesSectors  = 48 // le32
	cfgMaxWriteZeroesSeg      = 52 // le32
	cfgWriteZeroesMayUnmap    = 56 // u8, then unused1[3]
	configSize                = 60
)

const (
	// NumQueues request queues are served concurrently, one goroutine each.
	NumQueues = 2
	queueSize = 256
	// segMax: a chain also carries the header and the status descriptors.
	segMax = queueSize - 2
	// blockSize is the logical block size the guest is told; it matches
	// the sector size so any image works.
	blockSize = SectorSize
	// Discard and write-zeroes limits: 32 segments of up to 4 GiB-512 bytes
	// each, aligned hint at the host's 4 KiB pages.
	maxSegments      = 32
	maxSegSectors    = 1<<23 - 1
	discardAlignment = 4096 / SectorSize
)

// Options describe one disk (the --disk flag).
type Options struct {
	Path     string // raw image file or block device
	ReadOnly bool   // open read-only and offer VIRTIO_BLK_F_RO
	Serial   string // GET_ID answer, at most 20 bytes
	IO       IOMode // how reads and writes reach the image
}

// IOMode says how a disk's reads and writes reach its image.
type IOMode int

const (
	// IOAuto is IOInline for an image on a memory file system (tmpfs,
	// ramfs), IOUring for any other.
	IOAuto IOMode = iota
	// IOUring submits reads and writes to io_uring from one goroutine per
	// queue and completes them on another, so the kernel's own threads
	// wait for the disk. Each queue's ring is made when the disk opens and
	// restricted to its image (Linux 5.10): where the host cannot, Open
	// fails, and IOAuto falls back to IOBlocking.
	IOUring
	// IOBlocking makes blocking preadv and pwritev calls, one goroutine per
	// queue.
	IOBlocking
	// IOInline makes the same calls as raw system calls, which never enter
	// the Go scheduler's syscall state: for an image whose pages are in
	// memory, where a call waits for no device. tmpfs refuses
	// non-waiting reads (RWF_NOWAIT; Linux 6.1 and 6.18 alike), so io_uring
	// hands each of its requests to a worker thread, which costs more
	// than the copy.
	IOInline
)

func (m IOMode) String() string {
	switch m {
	case IOAuto:
		return "auto"
	case IOUring:
		return "io_uring"
	case IOBlocking:
		return "blocking"
	case IOInline:
		return "inline"
	}
	return fmt.Sprintf("IOMode(%d)", int(m))
}

// Device is one virtio-blk disk. Open it, hand it to a transport, and Close
// it after the transport has reset it.
type Device struct {
	opts    Options
	file    *os.File
	sectors uint64
	config  [configSize]byte
	log     *virtio.Warner

	mu     sync.Mutex // serialises Activate and Reset
	queues []*virtio.Queue
	wg     sync.WaitGroup
	io     IOMode      // opts.IO, IOAuto resolved
	rings  []*diskRing // one per queue with IOUring, from Open to Close
}

var _ virtio.Device = (*Device)(nil)

// ErrLocked is wrapped by Open when another open of the image holds its lock.
var ErrLocked = errors.New("disk image is in use")

// Open opens the image and reads its capacity. The image is locked (shared
// when read-only, exclusive otherwise) so two VMs, or two --disk flags, do
// not write one image.
func Open(opts Options) (*Device, error) {
	if len(opts.Serial) > idBytes {
		return nil, fmt.Errorf("disk %q: serial %q is longer than %d bytes", opts.Path, opts.Serial, idBytes)
	}
	f, err := openImage(opts)
	if err != nil {
		return nil, err
	}
	size, err := imageSize(f)
	if err == nil {
		err = lockImage(f, opts.ReadOnly)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open disk %q: %w", opts.Path, err)
	}
	if rest := size % SectorSize; rest != 0 {
		slog.Warn("disk size is not a multiple of 512 bytes; the guest does not see the tail",
			"disk", opts.Path, "size", size, "hidden", rest)
	}
	d := &Device{opts: opts, file: f, sectors: uint64(size) / SectorSize, log: virtio.NewWarner("disk", opts.Path), io: opts.IO}
	if d.io == IOAuto {
		d.io = IOUring
		if inMemory(f) {
			d.io = IOInline
		}
	}
	if err := d.openRings(); err != nil {
		f.Close()
		return nil, err
	}
	d.fillConfig()
	return d, nil
}

// openRings makes a ring for each queue of an IOUring disk. Where the host
// cannot make restricted rings, an explicit IOUring fails: whoever asked
// for it gets it or an error naming the fix, never quietly another mode or
// an unrestricted ring; IOAuto warns once and makes blocking calls.
func (d *Device) openRings() error {
	if d.io != IOUring {
		return nil
	}
	var fd int
	err := control(d.file, func(v int) error { fd = v; return nil })
	for range NumQueues {
		if err != nil {
			break
		}
		var r *diskRing
		if r, err = newDiskRing(fd); err == nil {
			d.rings = append(d.rings, r)
		}
	}
	if err == nil {
		return nil
	}
	if cerr := d.closeRings(); cerr != nil {
		slog.Warn("close io_uring", "disk", d.opts.Path, "err", cerr)
	}
	d.io, err = withoutRings(d.opts, err)
	return err
}

// withoutRings is what a disk does when its rings could not be made: an
// error for an explicit IOUring, blocking calls and one line saying so for
// IOAuto.
func withoutRings(opts Options, err error) (IOMode, error) {
	if opts.IO == IOUring {
		return IOUring, fmt.Errorf("disk %q: aio=io_uring: %w (it needs Linux 5.10 or later with io_uring enabled; aio=auto or aio=blocking makes blocking system calls)", opts.Path, err)
	}
	slog.Warn("disk requests use blocking system calls: io_uring is not available", "disk", opts.Path, "err", err)
	return IOBlocking, nil
}

func (d *Device) closeRings() error {
	var errs []error
	for _, r := range d.rings {
		errs = append(errs, r.close())
	}
	d.rings = nil
	return errors.Join(errs...)
}

func openImage(opts Options) (*os.File, error) {
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(opts.Path, flag, 0)
	if err == nil {
		return f, nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if !opts.ReadOnly && (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) {
		return nil, fmt.Errorf("open disk %q: %w (add ,ro to attach it read-only)", opts.Path, err)
	}
	return nil, fmt.Errorf("open disk %q: %w", opts.Path, err)
}

// imageSize is the size of a regular file or a block device.
func imageSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size(), nil
	case fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0:
		return f.Seek(0, io.SeekEnd)
	}
	return 0, fmt.Errorf("not a regular file or block device (mode %v)", fi.Mode())
}

func lockImage(f *os.File, shared bool) error {
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	err := control(f, func(fd int) error { return unix.Flock(fd, how|unix.LOCK_NB) })
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return fmt.Errorf("%w: another process or --disk flag has it open", ErrLocked)
	case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return nil // the filesystem cannot lock (some network filesystems): run unlocked
	}
	return err
}

// control runs fn on f's descriptor without taking it out of the runtime's
// hands (f.Fd would switch it to blocking mode and allow a racing Close).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Close releases the rings and the image. The device must be reset first.
func (d *Device) Close() error {
	if err := d.closeRings(); err != nil {
		return fmt.Errorf("close disk %q: io_uring: %w", d.opts.Path, err)
	}
	if err := d.file.Close(); err != nil {
		return fmt.Errorf("close disk %q: %w", d.opts.Path, err)
	}
	return nil
}

// Capacity is the disk size in 512-byte sectors.
func (d *Device) Capacity() uint64 { return d.sectors }

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeBlock }

// Features implements virtio.Device.
func (d *Device) Features() uint64 {
	f := uint64(featureSegMax | featureBlkSize | featureFlush | featureMQ)
	if d.opts.ReadOnly {
		return f | featureRO
	}
	return f | featureDiscard | featureWriteZeroes
}

// QueueMaxSizes implements virtio.Device.
func (d *Device) QueueMaxSizes() []uint16 {
	s := make([]uint16, NumQueues)
	for i := range s {
		s[i] = queueSize
	}
	return s
}

func (d *Device) fillConfig() {
	c := d.config[:]
	le := binary.LittleEndian
	le.PutUint64(c[cfgCapacity:], d.sectors)
	le.PutUint32(c[cfgSegMax:], segMax)
	le.PutUint32(c[cfgBlkSize:], blockSize)
	le.PutUint16(c[cfgNumQueues:], NumQueues)
	le.PutUint32(c[cfgMaxDiscardSectors:], maxSegSectors)
	le.PutUint32(c[cfgMaxDiscardSeg:], maxSegments)
	le.PutUint32(c[cfgDiscardSectorAlignment:], discardAlignment)
	le.PutUint32(c[cfgMaxWriteZeroesSectors:], maxSegSectors)
	le.PutUint32(c[cfgMaxWriteZeroesSeg:], maxSegments)
	c[cfgWriteZeroesMayUnmap] = 1
}

// ReadConfig implements virtio.Device: the configuration never changes, and
// bytes past it read as zero.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < configSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Device. Nothing is writable: writeback is
// only writable with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// limits is what requests are checked against under the negotiated features.
func (d *Device) limits(features uint64) limits {
	return limits{
		sectors:      d.sectors,
		readOnly:     d.opts.ReadOnly,
		discard:      features&featureDiscard != 0,
		writeZeroes:  features&featureWriteZeroes != 0,
		maxSegments:  maxSegments,
		maxSegSector: maxSegSectors,
	}
}

// Activate implements virtio.Device: one worker per enabled queue.
func (d *Device) Activate(a virtio.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues != nil {
		return fmt.Errorf("disk %q: activated twice without a reset", d.opts.Path)
	}
	if len(a.Queues) > NumQueues {
		return fmt.Errorf("disk %q: %d queues, the device has %d", d.opts.Path, len(a.Queues), NumQueues)
	}
	lim := d.limits(a.Features)
	d.queues = []*virtio.Queue{}
	for i, q := range a.Queues {
		if q == nil {
			continue
		}
		d.queues = append(d.queues, q)
		d.startQueue(i, q, lim)
	}
	return nil
}

// startQueue starts the goroutines of queue i: io_uring's submitter and
// completer on the queue's ring, or one worker making the calls itself.
func (d *Device) startQueue(i int, q *virtio.Queue, lim limits) {
	if i < len(d.rings) && !d.rings[i].lost {
		r := newRingQueue(d, q, lim, d.rings[i])
		d.wg.Add(2)
		go r.submitter()
		go r.completer()
		return
	}
	d.wg.Add(1)
	go d.worker(q, lim)
}

// Reset implements virtio.Device: stop the workers and wait for them; the
// requests in flight complete first.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queues {
		q.Stop()
	}
	d.wg.Wait()
	d.queues = nil
}

// inMemory reports whether f lives on a memory file system, where reads and
// writes wait for no device.
func inMemory(f *os.File) bool {
	var st unix.Statfs_t
	err := control(f, func(fd int) error { return unix.Fstatfs(fd, &st) })
	return err == nil && (st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC)
}
