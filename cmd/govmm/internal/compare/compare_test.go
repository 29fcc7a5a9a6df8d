package compare

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"flag"
	"image"
	_ "image/png"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Summary
		ok   bool
	}{
		{[]float64{3, 1, 2}, Summary{3, 2, 1, 3}, true},
		{[]float64{4, 1, 3, 2}, Summary{4, 2.5, 1, 4}, true},
		{[]float64{5}, Summary{1, 5, 5, 5}, true},
		{[]float64{math.NaN(), 7, 9}, Summary{2, 8, 7, 9}, true},
		{[]float64{math.NaN()}, Summary{}, false},
		{nil, Summary{}, false},
	} {
		got, ok := Summarize(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("Summarize(%v) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		a, b, want float64
		ok         bool
	}{
		{30, 10, 3, true},
		{5, 10, 0.5, true},
		{0, 10, 0, true},
		{5, 0, 0, false},
		{5, -2, 0, false},
		{-1, 2, 0, false},
		{math.NaN(), 2, 0, false},
	} {
		got, ok := Ratio(c.a, c.b)
		if ok != c.ok || got != c.want {
			t.Errorf("Ratio(%v, %v) = %v, %v; want %v, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
}

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseSmapsRollup(t *testing.T) {
	pss, rss, err := ParseSmapsRollup(open(t, "smaps_rollup"))
	if err != nil {
		t.Fatal(err)
	}
	if pss != 278*1024 || rss != 1724*1024 {
		t.Errorf("pss %d rss %d; want %d %d", pss, rss, 278*1024, 1724*1024)
	}
	if _, _, err := ParseSmapsRollup(strings.NewReader("Rss: 1 kB\n")); err == nil {
		t.Error("no Pss line: no error")
	}
}

// The PSS of an instance is the sum over its processes.
func TestPSSSum(t *testing.T) {
	var sum int64
	for i := 0; i < 3; i++ {
		pss, _, err := ParseSmapsRollup(open(t, "smaps_rollup"))
		if err != nil {
			t.Fatal(err)
		}
		sum += pss
	}
	if sum != 3*278*1024 {
		t.Errorf("sum %d", sum)
	}
}

func TestVMMOverhead(t *testing.T) {
	maps, err := ParseSmaps(open(t, "smaps_vmm"))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 10 {
		t.Fatalf("%d mappings, want 10", len(maps))
	}
	if maps[7].Path != "[stack]" || maps[0].Path != "/usr/local/bin/govmm" {
		t.Errorf("paths %q %q", maps[7].Path, maps[0].Path)
	}
	over, guest, err := VMMOverhead(maps)
	if err != nil {
		t.Fatal(err)
	}
	// The 256 MiB anonymous mapping is guest RAM (40960 kB touched); the
	// 64 MiB one is the Go heap and counts as overhead. The 512 MiB one is
	// address space the Go runtime reserved (---p): larger, but not RAM.
	if guest != 40960*1024 {
		t.Errorf("guest RAM Rss %d, want %d", guest, 40960*1024)
	}
	if want := int64(54104-40960) * 1024; over != want {
		t.Errorf("overhead %d, want %d", over, want)
	}
	if _, _, err := VMMOverhead(maps[:1]); err == nil {
		t.Error("no anonymous mapping: no error")
	}
}

func TestCgroupPaths(t *testing.T) {
	p, err := CgroupPaths(open(t, "cgroup_hybrid"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory": "/machine/5c1085bbc7ad/cg1", "cpuacct": "/cg1",
		"cpu": "/cg1", "": "/cg1", "name=systemd": "/cg1", "hugetlb": "/cg1",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("controller %q: %q, want %q", k, p[k], v)
		}
	}
	p2, err := CgroupPaths(open(t, "cgroup_v2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p2) != 1 || p2[""] != "/user.slice/runc-web.scope" {
		t.Errorf("v2: %v", p2)
	}
	if _, err := CgroupPaths(strings.NewReader("garbage\n")); err == nil {
		t.Error("bad line: no error")
	}
}

func TestResolveCgroup(t *testing.T) {
	hybrid, _ := CgroupPaths(open(t, "cgroup_hybrid"))
	v2, _ := CgroupPaths(open(t, "cgroup_v2"))

	root := t.TempDir() // v1 controllers mounted, v2 under unified
	for _, d := range []string{"memory", "cpuacct", "unified"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	cg, err := ResolveCgroup(root, hybrid)
	if err != nil {
		t.Fatal(err)
	}
	if cg.V2 || cg.MemDir != filepath.Join(root, "memory", hybrid["memory"]) || cg.CPUDir != filepath.Join(root, "cpuacct/cg1") {
		t.Errorf("hybrid: %+v", cg)
	}

	pure := t.TempDir() // a pure v2 host
	os.WriteFile(filepath.Join(pure, "cgroup.controllers"), []byte("cpu memory\n"), 0o644)
	cg, err = ResolveCgroup(pure, v2)
	if err != nil {
		t.Fatal(err)
	}
	if !cg.V2 || cg.MemDir != filepath.Join(pure, "user.slice/runc-web.scope") {
		t.Errorf("v2: %+v", cg)
	}
}

func TestParsers(t *testing.T) {
	if v, err := ParseCPUStatUsage(strings.NewReader("usage_usec 2500000\nuser_usec 1\n")); err != nil || v != 2.5 {
		t.Errorf("cpu.stat: %v %v", v, err)
	}
	if v, err := ParseMemAvailable(strings.NewReader("MemTotal: 100 kB\nMemAvailable:   2048 kB\n")); err != nil || v != 2<<20 {
		t.Errorf("meminfo: %v %v", v, err)
	}
	stat := "1234 (govmm (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	if v, err := ParseStatCPU([]byte(stat)); err != nil || v != 300 {
		t.Errorf("stat: %v %v", v, err)
	}
}

func TestBundleWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh"],"cwd":"/"},"root":{"path":"rootfs","readonly":true},"hostname":"x"}`
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644)
	os.Mkdir(filepath.Join(dir, "rootfs"), 0o755)
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Write(t.TempDir(), []string{"echo", "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	data, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	proc := got["process"].(map[string]any)
	if !reflect.DeepEqual(proc["args"], []any{"echo", "hi"}) || proc["terminal"] != false || proc["cwd"] != "/" {
		t.Errorf("process %v", proc)
	}
	if root := got["root"].(map[string]any); root["path"] != filepath.Join(dir, "rootfs") || root["readonly"] != true {
		t.Errorf("root %v", root)
	}
	if got["hostname"] != "x" {
		t.Error("other fields lost")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(now) != cfg {
		t.Error("the user's bundle was modified")
	}
	if _, err := LoadBundle(t.TempDir()); err == nil || !strings.Contains(err.Error(), "make compare-bundle") {
		t.Errorf("missing bundle: %v", err)
	}
}

func samples(xs ...float64) []Sample {
	out := make([]Sample, len(xs))
	for i, x := range xs {
		out[i] = Sample(x)
	}
	return out
}

func fixtureReport() *Report {
	nan := math.NaN()
	return &Report{
		Bundle: "/srv/bundle", Runtimes: []string{"govmm", "runc", "crun"}, Baseline: "runc", Runs: 3,
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Rows: []Row{
			{measureOf("start.ready"), map[string][]Sample{
				"govmm": samples(120, 110, 150), "runc": samples(40, 38, 45), "crun": samples(20, 19, 22)}},
			{MeasuresOf("memory")[1], map[string][]Sample{
				"govmm": samples(60.5, 61, 59), "runc": samples(1.34, 1.34, 1.34), "crun": samples(1.3, nan, 1.4)}},
			{MeasuresOf("memory")[3], map[string][]Sample{
				"govmm": samples(12, 13, 12), "runc": samples(nan, nan, nan), "crun": samples(nan, nan, nan)}},
			{MeasuresOf("memory")[2], map[string][]Sample{ // empty: not shown
				"govmm": samples(nan, nan, nan)}},
			{MeasuresOf("cpu")[0], map[string][]Sample{
				"govmm": samples(0.55, 0.6, 0.52), "runc": samples(0.53, 0.52, 0.54), "crun": samples(0.5, 0.51, 0.52)}},
		},
		Notes: []string{"disk: not measured: the bundle has no fio"},
	}
}

func TestTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	rep := fixtureReport()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// NaN != NaN: compare what the table shows and the raw samples as text.
	var a, b bytes.Buffer
	WriteTable(&a, rep)
	WriteTable(&b, got)
	if a.String() != b.String() {
		t.Errorf("after the round trip:\n%s\nbefore:\n%s", b.String(), a.String())
	}
	if !math.IsNaN(float64(got.Rows[1].Samples["crun"][1])) || got.Rows[0].Samples["govmm"][2] != 150 {
		t.Errorf("samples: %v", got.Rows[1].Samples)
	}
	if !got.Started.Equal(rep.Started) || got.Baseline != "runc" || got.Rows[0].Key != "start.ready" {
		t.Errorf("header: %+v", got)
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != "measure,name,unit,runtime,n,median,min,max,ratio_to_runc" {
		t.Errorf("header %s", got)
	}
	// start: 3 runtimes; pss: 3; overhead: govmm only; cgroup: none; cpu: 3.
	if len(recs) != 1+3+3+1+3 {
		t.Errorf("%d records", len(recs))
	}
	if got := strings.Join(recs[1], ","); got != "start.ready,launch → first stdout line,ms,govmm,3,120,110,150,3" {
		t.Errorf("first record %s", got)
	}
	if recs[2][8] != "" {
		t.Errorf("the baseline has a ratio: %v", recs[2])
	}
	if got := strings.Join(recs[6], ","); got != "memory.pss,idle: PSS of its host processes,MiB,crun,2,1.35,1.3,1.4,1.00746" {
		t.Errorf("crun pss %s", got)
	}
}

func TestPlotSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.svg")
	if err := WritePlot(path, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Valid XML from start to end, with an <svg> root.
	d := xml.NewDecoder(bytes.NewReader(data))
	var root string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
}

func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	if err := WritePlot(path, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err != nil || format != "png" {
		t.Fatalf("decode: %v %q", err, format)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("size %v", b)
	}
	if err := WritePlot(filepath.Join(t.TempDir(), "c.pdf"), fixtureReport()); err == nil {
		t.Error(".pdf: no error")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--runs", "0"},
		{"--runs", "x"},
		{"--only", "start,bogus"},
		{"--runtimes", ""},
		{"--runtimes", "runc,runc"},
		{"--plot", "out.pdf"},
		{"--nosuchflag"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		if code := Main(args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "govmm compare:") {
			t.Errorf("%v: message %q", args, stderr.String())
		}
	}
	var out bytes.Buffer
	if code := Main([]string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "--runtimes") {
		t.Errorf("--help: %d %q", code, out.String())
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Setenv("GOVMM_CACHE", "/c")
	o, err := ParseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 5 || strings.Join(o.Runtimes, ",") != "govmm,qemu,runc,crun" || o.Bundle != "/c/compare-bundle" ||
		o.Memory != "256M" || o.Kernel != "/c/kernel-cloud/vmlinuz" || o.Initrd != "/c/guest/initramfs.cpio.gz" {
		t.Errorf("defaults %+v", o)
	}
	o, _ = ParseFlags([]string{"--only", "cpu,start"}, &bytes.Buffer{})
	if got := strings.Join(o.groups(), ","); got != "start,cpu" {
		t.Errorf("groups %s: want the order of priority", got)
	}
}

func TestNotRoot(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	var stderr bytes.Buffer
	if code := Main([]string{"--runtimes", "runc"}, &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "root") {
		t.Errorf("exit %d, %q", code, stderr.String())
	}
}

func TestMissingRuntime(t *testing.T) {
	_, err := NewOCI("no-such-runtime-xyz")
	if err == nil || !strings.Contains(err.Error(), "apt-get install no-such-runtime-xyz") {
		t.Errorf("%v", err)
	}
}

// TestPlotNegativeRange: a report whose host-wide MemAvailable drop went
// below zero in one run (the host freed more than the instance took) and
// that spans more than ten times runc's figure, so the chart is on a log
// scale: it is drawn, not a panic. The report is a real sandbox run's.
func TestPlotNegativeRange(t *testing.T) {
	b, err := os.ReadFile("testdata/report-negative-min.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".svg", ".png"} {
		if err := WritePlot(filepath.Join(t.TempDir(), "c"+ext), &rep); err != nil {
			t.Errorf("%s: %v", ext, err)
		}
	}
}

// measureOf is the row with key, wherever its group lists it.
func measureOf(key string) Measure {
	group, _, _ := strings.Cut(key, ".")
	for _, m := range MeasuresOf(group) {
		if m.Key == key {
			return m
		}
	}
	panic("no measure " + key)
}

func TestStartPhasesSplitABundleStart(t *testing.T) {
	in := &Instance{statsData: []byte(`{"reason":"powered off","bundle_start":{"ready_ms":9000,"started_ms":9400,
		"first_output_ms":9700,"guest_ready_uptime_ms":5500,"guest_exec_uptime_ms":5880}}`)}
	got, err := (&Govmm{}).startPhases(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"start.phase.host": 3500, "start.phase.kernel": 5500, "start.phase.setup": 400, "start.phase.exec": 300}
	if !maps.Equal(got, want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	for _, m := range MeasuresOf("start") {
		delete(want, m.Key)
	}
	if len(want) != 0 {
		t.Errorf("phases %v are no start measure: the table would not show them", want)
	}
	// A govmm that never saw the process start has no timeline to give.
	in.statsData = []byte(`{"reason":"powered off","bundle_start":{"ready_ms":9000,"guest_ready_uptime_ms":5500}}`)
	if _, err := (&Govmm{}).startPhases(in); err == nil {
		t.Error("a timeline without the process's start gave phases")
	}
}

// An instance whose output ends before the line a measure waits for is
// reported with how it exited and its last words on stderr, even when
// they come just after the output closed: that tells a lost guest from a
// failing runtime.
func TestOutputEndSaysHowTheInstanceEnded(t *testing.T) {
	in, err := launch("t1", t.TempDir(), []string{"sh", "-c", "exec >&-; sleep 0.2; echo 'govmm: the VM ended' >&2; exit 124"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	_, err = in.WaitLine(context.Background(), "ready")
	if err == nil || !strings.Contains(err.Error(), "exit status 124") || !strings.Contains(err.Error(), "the VM ended") {
		t.Errorf("WaitLine on an instance that closed its output and exited 124: %v", err)
	}
}
