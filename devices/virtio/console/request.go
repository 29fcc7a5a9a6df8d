package console

import (
	"errors"

	"github.com/govmm/govmm/devices/virtio"
)

var (
	// errRxReadable: receiveq buffers are device-writable only (§5.3.6.1).
	errRxReadable = errors.New("virtio-console receiveq chain has device-readable buffers")
	// errTxWritable: transmitq buffers are device-readable only (§5.3.6.1).
	errTxWritable = errors.New("virtio-console transmitq chain has device-writable buffers")
)

// parseReceive returns the buffers input may be written to.
func parseReceive(c virtio.Chain) ([]virtio.Buffer, error) {
	if len(c.Readable) > 0 {
		return nil, errRxReadable
	}
	return c.Writable, nil
}

// parseTransmit returns the buffers that hold output.
func parseTransmit(c virtio.Chain) ([]virtio.Buffer, error) {
	if len(c.Writable) > 0 {
		return nil, errTxWritable
	}
	return c.Readable, nil
}
