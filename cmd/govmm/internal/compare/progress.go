package compare

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress tells the user where a long comparison is: a bar with an ETA on
// a terminal, one line per step otherwise (logs, CI).
type progress interface {
	step(desc string)
	finish()
}

func newProgress(w io.Writer, total int) progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
		return &barProgress{bar: bar}
	}
	return &lineProgress{w: w, total: total}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (b *barProgress) step(desc string) {
	b.bar.Describe(desc)
	b.bar.Add(1)
}

func (b *barProgress) finish() { b.bar.Finish() }

type lineProgress struct {
	w        io.Writer
	n, total int
}

func (l *lineProgress) step(desc string) {
	l.n++
	fmt.Fprintf(l.w, "compare: [%d/%d] %s\n", l.n, l.total, desc)
}

func (l *lineProgress) finish() {}
