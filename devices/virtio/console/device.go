// Package console is the virtio console (virtio 1.2 §5.3) with one port and
// no multiport support: the guest's hvc0, backed by an io.Reader for input
// and an io.Writer for output (govmm's stdin and stdout).
package console

import (
	"fmt"
	"io"
	"sync"

	"github.com/govmm/govmm/devices/virtio"
)

// Virtqueues of port 0 (§5.3.2).
const (
	receiveq  = 0 // device → driver: input
	transmitq = 1 // driver → device: output
	queueSize = 128
)

// configSize is struct virtio_console_config: cols, rows, max_nr_ports,
// emerg_wr (§5.3.4). Without SIZE, MULTIPORT and EMERG_WRITE it reads zero.
const configSize = 12

// Device is one virtio console.
type Device struct {
	out   io.Writer
	input chan []byte   // chunks from the input goroutine
	done  chan struct{} // closed by Close: the input goroutine exits
	close sync.Once

	mu     sync.Mutex // serialises Activate and Reset
	stop   chan struct{}
	queues []*virtio.Queue
	wg     sync.WaitGroup
	// pending is input read but not delivered. The receive worker owns it
	// while it runs and hands it back when it exits (ordered by wg).
	pending []byte
	outErr  sync.Once
}

var _ virtio.Device = (*Device)(nil)

// New returns a console that reads guest input from in (nil: none) and
// writes guest output to out. A goroutine reads in for the life of the
// device, so a reset never waits on a blocked read; it ends when in returns
// an error or, after Close, when its current Read returns.
func New(in io.Reader, out io.Writer) *Device {
	d := &Device{out: out, input: make(chan []byte), done: make(chan struct{})}
	if in != nil {
		go d.readInput(in)
	}
	return d
}

// Close lets the input goroutine end. Reset the device first.
func (d *Device) Close() error {
	d.close.Do(func() { close(d.done) })
	return nil
}

func (d *Device) readInput(in io.Reader) {
	for {
		buf := make([]byte, 4096)
		n, err := in.Read(buf)
		if n > 0 {
			select {
			case d.input <- buf[:n]:
			case <-d.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeConsole }

// Features implements virtio.Device: no SIZE, MULTIPORT or EMERG_WRITE.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes implements virtio.Device: port 0's receiveq and transmitq.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{queueSize, queueSize} }

// ReadConfig implements virtio.Device: cols and rows are zero (no SIZE),
// and nothing else is defined without features.
func (d *Device) ReadConfig(offset uint64, data []byte) { clear(data) }

// WriteConfig implements virtio.Device: emerg_wr needs EMERG_WRITE.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate implements virtio.Device: a worker per enabled queue.
func (d *Device) Activate(a virtio.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != nil {
		return fmt.Errorf("virtio-console: activated twice without a reset")
	}
	if len(a.Queues) != 2 {
		return fmt.Errorf("virtio-console: %d queues, want 2", len(a.Queues))
	}
	d.stop = make(chan struct{})
	if q := a.Queues[receiveq]; q != nil {
		d.queues = append(d.queues, q)
		d.wg.Add(1)
		go d.receive(q, d.stop, d.pending)
		d.pending = nil
	}
	if q := a.Queues[transmitq]; q != nil {
		d.queues = append(d.queues, q)
		d.wg.Add(1)
		go d.transmit(q)
	}
	return nil
}

// Reset implements virtio.Device. Input read but not delivered is kept for
// the next activation.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop == nil {
		return
	}
	close(d.stop)
	for _, q := range d.queues {
		q.Stop()
	}
	d.wg.Wait()
	d.stop, d.queues = nil, nil
}
