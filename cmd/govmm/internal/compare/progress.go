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
	begin(desc string) // a step starts
	end()              // the step is done
	note(msg string)   // a message that must not garble the bar
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
		return &barProgress{w: w, bar: bar}
	}
	return &lineProgress{w: w, total: total}
}

type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *barProgress) begin(desc string) { b.bar.Describe(desc) }
func (b *barProgress) end()              { b.bar.Add(1) }

func (b *barProgress) note(msg string) {
	b.bar.Clear()
	fmt.Fprintln(b.w, msg)
	b.bar.RenderBlank()
}

func (b *barProgress) finish() { b.bar.Finish() }

type lineProgress struct {
	w        io.Writer
	n, total int
}

func (l *lineProgress) begin(desc string) {
	l.n++
	fmt.Fprintf(l.w, "compare: [%d/%d] %s\n", l.n, l.total, desc)
}

func (l *lineProgress) end()            {}
func (l *lineProgress) note(msg string) { fmt.Fprintln(l.w, msg) }

func (l *lineProgress) finish() {}
