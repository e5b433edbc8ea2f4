// Package textsafe makes text that virtbench did not write itself (what
// a run directory, a campaign's host or a scenario says) safe to print in
// each output format: no terminal control sequence reaches a terminal, no
// newline starts a line of a line-oriented format, no markup reaches a
// Markdown or XML document. It imports nothing of virtbench.
package textsafe

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s as one printable line: every control character (C0, DEL,
// C1), Unicode format character (bidirectional overrides among them) and
// byte that is not UTF-8 is written as a Go escape (\n, \x1b, \u202e), so
// that what it was stays visible and nothing of it acts. Text without
// them comes back unchanged.
func Line(s string) string {
	if clean(s, false) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafe(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafe reports whether r acts rather than prints: a control character
// or a format character (Cf: bidirectional overrides, zero-width joiners).
func unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// clean reports whether s is UTF-8 without unsafe runes; multiline allows
// newlines and tabs.
func clean(s string, multiline bool) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
		}
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unsafe(r) {
			return false
		}
	}
	return true
}

// Text is Line for text that may span lines: newlines and tabs stay.
func Text(s string) string {
	if clean(s, true) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(Line(l), `\t`, "\t")
	}
	return strings.Join(lines, "\n")
}

// markdown escapes what Markdown (CommonMark with GitHub's tables) would
// read as markup inside a table cell or a paragraph: HTML, code spans,
// links, a cell's end and the escape character itself. A lone '>' starts
// no tag and, inside a line, no quote: it stays.
var markdown = strings.NewReplacer(`\`, `\\`, "|", `\|`, "`", "\\`", "[", `\[`, "]", `\]`,
	"<", "&lt;", "&", "&amp;")

// Markdown returns s as text in one Markdown line (a table cell or a list
// item): Line, then markup escaped.
func Markdown(s string) string { return markdown.Replace(Line(s)) }

// XML returns s with every character XML 1.0 forbids (controls other than
// tab and newline, U+FFFE, U+FFFF, invalid UTF-8) written as Line writes
// it; markup is the XML encoder's to escape.
func XML(s string) string { return Line(s) }

// A Writer passes text to a terminal or a file with every control
// character but newline and tab written as Line writes it, so that
// nothing printed can move the cursor, retitle the window or clear the
// screen. It forwards Fd and Closed to what it wraps (see Unwrap).
type Writer struct {
	w io.Writer
	// pending holds the start of a rune split between two writes.
	pending []byte
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Unwrap returns the writer w writes to, for a caller that writes its
// own control sequences (a progress line that rewrites itself).
func (w *Writer) Unwrap() io.Writer { return w.w }

// Write writes p made safe; it reports len(p) written when the safe text
// was.
func (w *Writer) Write(p []byte) (int, error) {
	b := append(w.pending, p...)
	w.pending = nil
	// Keep an incomplete rune at the end for the next write.
	if i := lastRuneStart(b); i >= 0 && !utf8.FullRune(b[i:]) && len(b)-i < utf8.UTFMax {
		w.pending = append([]byte(nil), b[i:]...)
		b = b[:i]
	}
	if _, err := io.WriteString(w.w, Text(string(b))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lastRuneStart returns the index where b's last rune begins, or -1.
func lastRuneStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return -1
}

// Fd returns the descriptor of what w wraps (a caller asks whether it is
// a terminal), or ^uintptr(0).
func (w *Writer) Fd() uintptr {
	if f, ok := w.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// Closed forwards what w wraps says of being closed early, or "".
func (w *Writer) Closed() string {
	if c, ok := w.w.(interface{ Closed() string }); ok {
		return c.Closed()
	}
	return ""
}
