package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// lzmaSizeUnknown is the legacy header's size when the stream ends with
// an end marker instead, as `lzma` writes when it reads a pipe.
const lzmaSizeUnknown = ^uint64(0)

// newLZMAReader reads a legacy .lzma stream, as Linux's build writes with
// `lzma -9`: a 13-byte header (properties, dictionary size and
// uncompressed size, little-endian), then LZMA data. The decoder
// allocates the header's dictionary, up to 4 GiB, whole before it decodes
// a byte. No match reaches back past the output's start, so a dictionary
// the size of the output wanted holds all a match can reach: a larger one
// is cut to that in the header the decoder reads. (ulikunitz/xz's
// DictCap only refuses a larger dictionary, and so would refuse
// `lzma -9`'s 64 MiB for a smaller kernel.)
func newLZMAReader(r io.Reader, want int64) (io.Reader, error) {
	h := make([]byte, lzma.HeaderLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, fmt.Errorf("header: %w", noEOF(err))
	}
	if size := binary.LittleEndian.Uint64(h[5:]); size != lzmaSizeUnknown && size != uint64(want) {
		return nil, fmt.Errorf("its header says it holds %d bytes, the trailer %d", size, want)
	}
	dict := max(min(int64(binary.LittleEndian.Uint32(h[1:])), want), lzma.MinDictCap)
	binary.LittleEndian.PutUint32(h[1:], uint32(dict))
	return lzma.ReaderConfig{DictCap: int(dict)}.NewReader(io.MultiReader(bytes.NewReader(h), r))
}
