package rawsys

import "golang.org/x/sys/unix"

// AppendIovecs appends to iov one iovec per non-empty slice of bufs, for a
// vectored system call: Writev here, and virtio-blk's preadv and pwritev,
// which may block and so are not made raw. Callers keep iov for the next
// call, where x/sys's Writev, Preadv and Pwritev allocate it every time.
func AppendIovecs(iov []unix.Iovec, bufs [][]byte) []unix.Iovec {
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	return iov
}
