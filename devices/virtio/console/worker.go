package console

import (
	"log/slog"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// receive delivers input into receiveq buffers until stopped. It waits for
// input first and only then for a buffer, so input is never taken from the
// goroutine without somewhere to keep it: what it holds when stopped goes
// back to d.pending.
func (d *Device) receive(q *virtio.Queue, stop <-chan struct{}, data []byte) {
	defer d.wg.Done()
	defer func() { d.pending = data }()
	mem := q.Mem()
	for {
		if len(data) == 0 {
			select {
			case data = <-d.input:
			case <-stop:
				return
			}
		}
		c, ok, err := q.Pop()
		if err != nil {
			return
		}
		if !ok {
			if err := q.Wait(); err != nil {
				return
			}
			continue
		}
		n, err := deliver(mem, c, data)
		if err != nil {
			q.Fail(err)
			return
		}
		data = data[n:]
		if err := q.Push(c.Head, n); err != nil {
			return
		}
		q.Notify()
	}
}

// deliver copies as much of data as fits into the chain.
func deliver(mem *memory.RAM, c virtio.Chain, data []byte) (uint32, error) {
	bufs, err := parseReceive(c)
	if err != nil {
		return 0, err
	}
	w := virtio.NewWriter(mem, bufs)
	n := min(uint64(len(data)), w.Remaining())
	if _, err := w.Write(data[:n]); err != nil {
		return 0, err
	}
	return w.Written(), nil
}

// transmit writes transmitq buffers to the output until stopped or broken.
func (d *Device) transmit(q *virtio.Queue) {
	defer d.wg.Done()
	q.Serve(func(mem *memory.RAM, c virtio.Chain) (uint32, error) { return 0, d.emit(mem, c) })
}

// emit writes the chain's bytes to the output straight from guest memory.
// A failing output (a closed terminal) drops them: the guest must not stall.
func (d *Device) emit(mem *memory.RAM, c virtio.Chain) error {
	bufs, err := parseTransmit(c)
	if err != nil {
		return err
	}
	for _, b := range bufs {
		p, err := mem.Slice(b.Addr, uint64(b.Len))
		if err != nil {
			return err
		}
		if _, err := d.out.Write(p); err != nil {
			d.outErr.Do(func() { slog.Warn("virtio-console output failed; dropping guest output", "err", err) })
			return nil
		}
	}
	return nil
}
