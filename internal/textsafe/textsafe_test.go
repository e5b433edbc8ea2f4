package textsafe

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"qemu-tcg 1.5 ms", "qemu-tcg 1.5 ms"},
		{"Intel® Xeon® ü", "Intel® Xeon® ü"},
		{"evil\x1b]0;pwned\x07title", `evil\x1b]0;pwned\x07title`},
		{"two\nlines\r", `two\nlines\r`},
		{"tab\there", `tab\there`},
		{"del\x7f c1\u009b", `del\x7f c1\x9b`},
		{"rtl\u202eexe.txt", `rtl\u202eexe.txt`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.want {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	if got, want := Text("a\tb\nc\x1b[2Jd\n"), "a\tb\nc\\x1b[2Jd\n"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

func TestMarkdown(t *testing.T) {
	got := Markdown("a | b <script>alert(1)</script> [x](javascript:y) `c` \\ &\nrow")
	for _, bad := range []string{"<script", "[x]", "`c`", "\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("Markdown left %q in %q", bad, got)
		}
	}
	if strings.Count(got, "|") != strings.Count(got, `\|`) {
		t.Errorf("Markdown left a cell's end in %q", got)
	}
	if Markdown("qemu-debian p99") != "qemu-debian p99" {
		t.Errorf("Markdown changed plain text")
	}
}

// TestXML: any text, once made safe, is valid in an XML document.
func TestXML(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("<svg><text>")
	xml.EscapeText(&b, []byte(XML("host\x00\x01\x1b\ufffe\xff<&>")))
	b.WriteString("</text></svg>")
	d := xml.NewDecoder(&b)
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("invalid XML %q: %v", b.String(), err)
			}
			break
		}
	}
}

// TestWriter: control sequences split across writes, and runes split
// across writes, come out as one safe text.
func TestWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	for _, p := range []string{"ok ü\n\x1b", "[2J", "é"[:1], "é"[1:], "\x07end\n"} {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got, want := out.String(), "ok ü\n\\x1b[2Jé\\x07end\n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}
