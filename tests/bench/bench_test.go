package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// smapsExcerpt is trimmed from a govmm process at init: the binary, the Go
// heap, a thread stack, 256 MiB of guest RAM, the heap and a named anonymous
// mapping.
const smapsExcerpt = `00400000-0051e000 r-xp 00000000 00:16 19958727                           /work/main/bin/govmm
Size:               1144 kB
KernelPageSize:        4 kB
Rss:                 848 kB
Pss:                 848 kB
VmFlags: rd ex mr mw me dw sd
8f6b9400000-8f6bac00000 rw-p 00000000 00:00 0 
Size:              24576 kB
Rss:               22528 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac sd
7f45f7600000-7f45f7e00000 rw-p 00000000 00:00 0 
Size:               8192 kB
Rss:                2048 kB
VmFlags: rd wr mr mw me ac sd
7f45f7e00000-7f4607e00000 rw-p 00000000 00:00 0 
Size:             262144 kB
Rss:              112640 kB
AnonHugePages:    110592 kB
VmFlags: rd wr mr mw me ac sd hg
564f3319b000-564f33b18000 rw-p 00000000 00:00 0                          [heap]
Size:             300000 kB
Rss:                4748 kB
7f0000000000-7f0020000000 rw-p 00000000 00:00 0                          [anon:guest ram]
Size:             524288 kB
Rss:                1024 kB
`

func TestParseSmaps(t *testing.T) {
	maps, err := parseSmaps(strings.NewReader(smapsExcerpt))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{size: 1144 << 10, rss: 848 << 10},
		{size: 24576 << 10, rss: 22528 << 10, anonymous: true},
		{size: 8192 << 10, rss: 2048 << 10, anonymous: true},
		{size: 262144 << 10, rss: 112640 << 10, anonymous: true},
		{size: 300000 << 10, rss: 4748 << 10},
		{size: 524288 << 10, rss: 1024 << 10, anonymous: true},
	}
	if len(maps) != len(want) {
		t.Fatalf("got %d mappings, want %d: %+v", len(maps), len(want), maps)
	}
	for i := range want {
		if maps[i] != want[i] {
			t.Errorf("mapping %d: got %+v, want %+v", i, maps[i], want[i])
		}
	}
	// Guest RAM: the 256 MiB and 512 MiB anonymous mappings, not the
	// larger but named [heap], not the 8 MiB stack.
	total, guest := rssSplit(maps, 256<<20)
	if wantTotal := uint64(848+22528+2048+112640+4748+1024) << 10; total != wantTotal {
		t.Errorf("total RSS %d, want %d", total, wantTotal)
	}
	if wantGuest := uint64(112640+1024) << 10; guest != wantGuest {
		t.Errorf("guest RSS %d, want %d", guest, wantGuest)
	}
}

func TestParseSmapsRejectsBadNumber(t *testing.T) {
	_, err := parseSmaps(strings.NewReader("00400000-0051e000 r-xp 00000000 00:16 1 /bin/x\nRss: 12x kB\n"))
	if err == nil {
		t.Fatal("want an error for a malformed Rss line")
	}
}

// The testdata is QEMU 7.2's reply to query-stats for the vCPUs of a
// 2-vCPU microvm under KVM, recorded at the guest's init.
func TestSumStatsRecordedReply(t *testing.T) {
	line, err := os.ReadFile("testdata/query-stats-vcpu.json")
	if err != nil {
		t.Fatal(err)
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	sum, err := sumStats(m.Return)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{
		"exits":          1635 + 3743,
		"io_exits":       206 + 672,
		"mmio_exits":     30 + 404,
		"halt_wait_hist": 254 + 296, // histogram buckets summed
		"guest_mode":     0,         // a boolean
	} {
		if got, ok := sum[name]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, want)
		}
	}
}

func TestSumStatsErrors(t *testing.T) {
	for _, reply := range []string{`[]`, `{"x":1}`, `[{"provider":"kvm","stats":[{"name":"exits","value":"many"}]}]`} {
		if _, err := sumStats(json.RawMessage(reply)); err == nil {
			t.Errorf("sumStats(%s): want an error", reply)
		}
	}
}

// fakeQEMU answers like QEMU: a greeting, then events interleaved with
// replies.
func fakeQEMU(t *testing.T, conn net.Conn, replies ...string) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	greeting := `{"QMP": {"version": {}, "capabilities": []}}`
	for i, msg := range append([]string{greeting}, replies...) {
		if i > 0 {
			if _, err := r.ReadBytes('\n'); err != nil {
				t.Errorf("fake QEMU: %v", err)
				return
			}
		}
		if _, err := conn.Write([]byte(msg + "\n")); err != nil {
			t.Errorf("fake QEMU: %v", err)
			return
		}
	}
}

func TestQMPClientKeepsEvents(t *testing.T) {
	client, server := net.Pipe()
	go fakeQEMU(t, server,
		`{"return": {}}`,
		`{"event": "SHUTDOWN", "data": {"guest": true}}`+"\n"+
			`{"return": [{"provider": "kvm", "stats": [{"name": "exits", "value": 7}]}]}`,
	)
	q, err := newQMPClient(client, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	stats, err := q.vcpuStats()
	if err != nil {
		t.Fatal(err)
	}
	if stats["exits"] != 7 {
		t.Errorf("exits = %d, want 7", stats["exits"])
	}
	// The event came before the reply; waitEvent must not need to read.
	if err := q.waitEvent("SHUTDOWN"); err != nil {
		t.Fatal(err)
	}
}

func TestQMPClientError(t *testing.T) {
	client, server := net.Pipe()
	go fakeQEMU(t, server, `{"return": {}}`, `{"error": {"class": "CommandNotFound", "desc": "no query-stats"}}`)
	q, err := newQMPClient(client, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.vcpuStats(); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Fatalf("got %v, want the QMP error class", err)
	}
}

func bootWith(toInit float64, exits map[string]uint64, overheadMiB float64) sample {
	return sample{
		toInit:   time.Duration(toInit * float64(time.Second)),
		rssTotal: 256<<20 + uint64(overheadMiB*(1<<20)),
		rssGuest: 256 << 20,
		exits:    exits,
	}
}

func TestSummarizeMedian(t *testing.T) {
	r := result{samples: []sample{bootWith(4, nil, 0), bootWith(1, nil, 0), bootWith(2, nil, 0), bootWith(3, nil, 0)}}
	s := summarize(r, toInitMetric)
	if s != (summary{n: 4, med: 2.5, min: 1, max: 4}) {
		t.Errorf("got %+v", s)
	}
	if got := s.cell("%.2f"); got != "2.50 (1.00–4.00)" {
		t.Errorf("cell %q", got)
	}
	if got := (summary{}).cell("%.2f"); got != "-" {
		t.Errorf("empty cell %q", got)
	}
}

func TestTableAndTargets(t *testing.T) {
	gov := map[string]uint64{"exits": 3000, "io_exits": 800, "mmio_exits": 0, "halt_exits": 0, "govmm_only_exits": 5, "pf_fixed": 9, "preemption_reported": 20, "preemption_other": 3}
	qemu := map[string]uint64{"exits": 3500, "io_exits": 900, "mmio_exits": 400, "halt_exits": 0, "preemption_reported": 40}
	results := []result{
		{name: "govmm", samples: []sample{bootWith(3, gov, 4.2), bootWith(3.4, gov, 4.4), bootWith(3.2, gov, 4.3)}},
		{name: "qemu microvm", qemu: true, samples: []sample{bootWith(4.8, qemu, 42)}},
		{name: "qemu pc", qemu: true},
		{name: "govmm pvh", samples: []sample{bootWith(2.0, gov, 4.1)}},
		{name: "qemu microvm pvh", qemu: true, samples: []sample{bootWith(4.0, qemu, 40)}},
	}
	var b bytes.Buffer
	printTable(&b, results, 3)
	out := b.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := lines[1]
	col := strings.Index(header, "qemu microvm")
	for _, want := range []string{
		"launch→init (s)             3.20 (3.00–3.40)   4.80",
		"exits to init", "  io_exits", "  mmio_exits", "boots ok",
		"vCPU preemptions to init    23 (23–23)         40",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Only counters that every system reports and that are nonzero somewhere.
	for _, absent := range []string{"govmm_only_exits", "halt_exits", "pf_fixed"} {
		if strings.Contains(out, absent) {
			t.Errorf("table shows %s:\n%s", absent, out)
		}
	}
	// Columns line up: QEMU's cells start where its header does (all ASCII
	// up to there except the arrow, counted as one rune).
	for _, l := range lines[2:] {
		if r := []rune(l); len(r) <= col || r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("misaligned row %q (column at %d)", l, col)
		}
	}
	if !strings.Contains(out, "boots ok                    3/3") || !strings.Contains(out, " 0/3 ") {
		t.Errorf("boots row wrong:\n%s", out)
	}

	got := targets(results)
	for i, want := range []string{
		"launch→init below every QEMU variant's median: MET (govmm 3.20 s; best QEMU, qemu microvm pvh: 4.00 s)",
		"fewer exits to init than the best QEMU variant: MET (govmm 3000; best QEMU, qemu microvm: 3500)",
		"govmm's fastest path launch→init at most 0.6× QEMU's fastest: MET (govmm pvh 2.00 s; qemu microvm pvh 4.00 s; 0.50×)",
	} {
		if got[i] != want {
			t.Errorf("target %d:\n got %q\nwant %q", i, got[i], want)
		}
	}
	if want := "VMM overhead under 2.0 MiB RSS: NOT MET (govmm 4.3 MiB)"; got[4] != want {
		t.Errorf("overhead target:\n got %q\nwant %q", got[4], want)
	}
	small := result{name: "govmm", samples: []sample{bootWith(3, gov, 1.9)}}
	if got := targets([]result{small, results[1]}); got[4] != "VMM overhead under 2.0 MiB RSS: MET (govmm 1.9 MiB)" {
		t.Errorf("overhead target for a small govmm: %q", got[4])
	}
	slow := result{name: "govmm", samples: []sample{bootWith(5, gov, 6)}}
	if got := targets([]result{slow, results[1]}); !strings.Contains(got[0], ": NOT MET (govmm 5.00 s") || !strings.Contains(got[2], "NOT MET (govmm 5.00 s; qemu microvm 4.80 s") || !strings.Contains(got[4], ": NOT MET (govmm 6.0 MiB)") {
		t.Errorf("targets for a slow, large govmm: %q", got)
	}
	results[0].samples = nil
	if got := targets(results[:3]); !strings.Contains(got[4], "unknown") || !strings.Contains(got[0], "unknown") || !strings.Contains(got[3], "unknown") {
		t.Errorf("targets without govmm boots: %q", got)
	}
}

// A VMM stopped after a failure leaves its state in the error: what it
// printed on SIGQUIT, without the goroutine dump that follows.
func TestStopKeepsTheVCPUStateFromSIGQUIT(t *testing.T) {
	script := `trap 'echo "govmm: vCPU 0: halted rip=0xffffffff81000000" >&2; echo "SIGQUIT: quit" >&2; echo "goroutine 1 [running]:" >&2; exit 2' QUIT
echo "govmm: starting" >&2
while :; do sleep 0.01; done`
	p, err := launch("/bin/sh", []string{"-c", script}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.reap()
	for len(p.stderr.String()) == 0 {
		time.Sleep(10 * time.Millisecond) // the trap is set before the first line
	}
	p.stop()
	p.reap() // as callers do: stderr is complete only once waited for
	got := p.describe()
	for _, want := range []string{"govmm: starting", "VMM state when stopped (SIGQUIT):\n    govmm: vCPU 0: halted rip=0xffffffff81000000"} {
		if !strings.Contains(got, want) {
			t.Errorf("describe() = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "goroutine 1") {
		t.Errorf("describe() = %q, want no goroutine dump", got)
	}
}

// QEMU gets no SIGQUIT: it would just exit, printing nothing of use.
func TestStopKillsQEMUAtOnce(t *testing.T) {
	p, err := launch("/bin/sh", []string{"-c", "trap '' QUIT; while :; do sleep 0.01; done"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.reap()
	start := time.Now()
	p.stop()
	<-p.con.eof
	if d := time.Since(start); d > quitWait/2 {
		t.Errorf("stop took %v, want an immediate kill", d)
	}
}

// Exits are compared round by round, each govmm path with microvm on the
// same path; a round one of them lost pairs nothing.
func TestFewerExitsEveryRunPairsRounds(t *testing.T) {
	boot := func(round int, exits uint64) sample {
		return sample{round: round, exits: map[string]uint64{"exits": exits}}
	}
	results := []result{
		{name: "govmm", samples: []sample{boot(1, 90), boot(2, 120), boot(3, 80)}},
		{name: "qemu microvm", qemu: true, samples: []sample{boot(1, 100), boot(2, 110), boot(4, 10)}},
		{name: "govmm pvh", samples: []sample{boot(1, 50), boot(2, 60)}},
		{name: "qemu microvm pvh", qemu: true, samples: []sample{boot(1, 70), boot(2, 70)}},
	}
	want := "fewer exits to init than QEMU microvm in every run: NOT MET (govmm fewer than qemu microvm in 1 of 2; govmm pvh fewer than qemu microvm pvh in 2 of 2)"
	if got := fewerExitsEveryRun(results); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	results[1].samples[1].exits["exits"] = 130
	if got := fewerExitsEveryRun(results); !strings.Contains(got, ": MET (govmm fewer than qemu microvm in 2 of 2;") {
		t.Errorf("every round fewer: %q", got)
	}
}
