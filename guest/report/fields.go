package report

import (
	"strconv"
	"strings"
)

// Field is one key=value pair of a check's Detail. Keys are lower-case
// words chosen by the guest's code ([a-z0-9_]); values are anything.
type Field struct {
	Key, Value string
}

// FormatFields writes fields as a check Detail: key=value words separated by
// single spaces, in order. A value that is empty or holds a space, a quote
// or a character that is not printable ASCII is written as a Go string
// literal; a space that follows another is escaped as \x20, so the detail
// survives Check.Line's folding of whitespace runs.
func FormatFields(fields ...Field) string {
	words := make([]string, len(fields))
	for i, f := range fields {
		words[i] = f.Key + "=" + quoteValue(f.Value)
	}
	return strings.Join(words, " ")
}

func quoteValue(v string) string {
	plain := v != ""
	for _, r := range v {
		if r <= ' ' || r > '~' || r == '"' || r == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	return strings.ReplaceAll(strconv.QuoteToASCII(v), "  ", ` \x20`)
}

// ParseFields reads a Detail written by FormatFields. Words that are not
// key=value, and values that do not unquote, are skipped; a repeated key
// keeps its last value.
func ParseFields(detail string) map[string]string {
	out := map[string]string{}
	for rest := detail; rest != ""; {
		var word string
		word, rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
		key, value, ok := strings.Cut(word, "=")
		if strings.HasPrefix(value, `"`) {
			// The literal may hold spaces: take it from the whole rest.
			lit, err := strconv.QuotedPrefix(value + " " + rest)
			if err != nil {
				continue
			}
			rest = strings.TrimPrefix(value+" "+rest, lit)
			if value, err = strconv.Unquote(lit); err != nil {
				continue
			}
		}
		if ok && key != "" {
			out[key] = value
		}
	}
	return out
}

// Field returns the value of one field of the check's Detail.
func (c Check) Field(key string) (string, bool) {
	v, ok := ParseFields(c.Detail)[key]
	return v, ok
}
