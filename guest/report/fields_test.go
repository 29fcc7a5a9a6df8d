package report

import (
	"strings"
	"testing"
)

func TestFieldsRoundTripThroughACheckLine(t *testing.T) {
	fields := []Field{
		{"size", "16777216"}, {"empty", ""}, {"error", `open /dev/vdb:  no such "file"` + "\n\tx"},
		{"path", "/dev/vda"}, {"utf8", "naïve"}, {"eq", "a=b"},
	}
	line := Check{Name: "disk=/dev/vda", OK: true, Detail: FormatFields(fields...)}.Line()
	c, ok := ParseCheck(line)
	if !ok || c.Name != "disk=/dev/vda" || !c.OK {
		t.Fatalf("ParseCheck(%q) = %+v, %v", line, c, ok)
	}
	for _, f := range fields {
		if got, ok := c.Field(f.Key); !ok || got != f.Value {
			t.Errorf("field %s = %q, %v; want %q (line %q)", f.Key, got, ok, f.Value, line)
		}
	}
	if !strings.Contains(line, `error="open /dev/vdb: \x20no such \"file\"\n\tx"`) {
		t.Errorf("line %q: want the error readable", line)
	}
}

func TestParseFieldsSkipsFreeText(t *testing.T) {
	got := ParseFields(`loaded 3: a b x=1 w="a b=c" z="ok\x20go" =v y="unterminated`)
	if len(got) != 3 || got["x"] != "1" || got["w"] != "a b=c" || got["z"] != "ok go" {
		t.Errorf("ParseFields = %q", got)
	}
}

func FuzzParseFields(f *testing.F) {
	f.Add("k=v", `a b c="d\x20e"`)
	f.Fuzz(func(t *testing.T, key, value string) {
		if key == "" || key == "z" || strings.ContainsAny(key, "= \t\n\r\v\f\u0085\u00a0") || strings.ContainsFunc(key, func(r rune) bool { return r > '~' || r < ' ' }) {
			return
		}
		c := Check{Name: "n", Detail: FormatFields(Field{"a", value}, Field{key, value}, Field{"z", "1"})}
		got, _ := ParseCheck(c.Line())
		if f := ParseFields(got.Detail); f[key] != value || f["z"] != "1" {
			t.Fatalf("field %q=%q came back as %q from %q", key, value, f, got.Detail)
		}
	})
}
