package compare

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// A journal keeps every finished run on disk the moment it ends, so that a
// comparison that dies part-way (Ctrl-C, a host that reboots, a sandbox
// whose kernel oopses an hour in) resumes where it stopped when it is run
// again with the same flags, instead of losing the hour. Each line is one
// JSON object: a header naming the plan, then one entry per run.
type journal struct {
	path    string
	f       *os.File
	started time.Time
	done    map[runKey]journalEntry
}

type runKey struct {
	Step    string
	Runtime string
	Run     int
}

type journalHeader struct {
	Plan    string    `json:"plan"`
	Started time.Time `json:"started"`
}

type journalEntry struct {
	Step    string            `json:"step"`
	Runtime string            `json:"runtime"`
	Run     int               `json:"run"`
	Values  map[string]Sample `json:"values"`
	Err     string            `json:"error,omitempty"`
}

// plan names what a comparison measures: a journal resumes only the same
// plan, so runs of different binaries or flags never end up in one table.
// The files are the VMs' own (govmm's binary, the initramfs), which a
// rebuild changes under the same path.
func (o *Options) plan(files []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "runs=%d only=%s runtimes=%s bundle=%s qemu=%s kernel=%s initrd=%s memory=%s\n",
		o.Runs, strings.Join(o.groups(), ","), strings.Join(o.Runtimes, ","),
		o.Bundle, o.QEMU, o.Kernel, o.Initrd, o.Memory)
	for _, path := range files {
		if err := hashFile(h, path); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// openJournal reads the runs already in path, if it holds the same plan,
// and opens it for more. A journal of another plan is an error that says
// how to start afresh: silently throwing away hours of runs is worse.
func openJournal(path, plan string, now time.Time) (*journal, error) {
	j := &journal{path: path, started: now, done: map[runKey]journalEntry{}}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	valid, err := j.load(f, plan)
	if err != nil {
		f.Close()
		return nil, err
	}
	// A line cut short when the machine died is dropped; the run is redone.
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	j.f = f
	if valid == 0 {
		if err := j.append(journalHeader{Plan: plan, Started: now}); err != nil {
			f.Close()
			return nil, err
		}
	}
	return j, nil
}

// load reads the header and the entries, and returns the length of the
// part made of whole lines.
func (j *journal) load(r io.Reader, plan string) (int64, error) {
	br := bufio.NewReader(r)
	var valid int64
	for first := true; ; first = false {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return valid, nil // a last line without newline is one cut short
		}
		if err != nil {
			return 0, err
		}
		if first {
			var h journalHeader
			if json.Unmarshal(line, &h) != nil || h.Plan == "" {
				return 0, fmt.Errorf("%s is not a govmm compare journal; remove it or choose another --out", j.path)
			}
			if h.Plan != plan {
				return 0, fmt.Errorf("%s holds the runs of another comparison (other flags, or another govmm or initramfs); remove it to start afresh", j.path)
			}
			j.started = h.Started
		} else {
			var e journalEntry
			if err := json.Unmarshal(line, &e); err != nil {
				return 0, fmt.Errorf("%s: line %q: %v; remove it to start afresh", j.path, strings.TrimSpace(string(line)), err)
			}
			j.done[runKey{e.Step, e.Runtime, e.Run}] = e
		}
		valid += int64(len(line))
	}
}

// record writes one finished run and syncs it: the next moment may be the
// one the machine dies in.
func (j *journal) record(step, runtime string, run int, v map[string]float64, runErr error) error {
	e := journalEntry{Step: step, Runtime: runtime, Run: run, Values: map[string]Sample{}}
	for k, x := range v {
		e.Values[k] = Sample(x)
	}
	if runErr != nil {
		e.Err = runErr.Error()
	}
	if err := j.append(e); err != nil {
		return err
	}
	j.done[runKey{step, runtime, run}] = e
	return nil
}

func (j *journal) append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return j.f.Sync()
}

// outcome is what one run of a trial gave.
type outcome struct {
	values map[string]float64
	err    error
}

// lookup returns a run already done, as the trial returned it.
func (j *journal) lookup(step, runtime string, run int) (outcome, bool) {
	e, ok := j.done[runKey{step, runtime, run}]
	if !ok {
		return outcome{}, false
	}
	o := outcome{values: map[string]float64{}}
	for k, x := range e.Values {
		o.values[k] = float64(x)
	}
	if e.Err != "" {
		o.err = errors.New(e.Err)
	}
	return o, true
}

// close keeps the file; remove deletes it once the report holding every
// run is written.
func (j *journal) close() error { return j.f.Close() }

func (j *journal) remove() error {
	j.f.Close()
	return os.Remove(j.path)
}
