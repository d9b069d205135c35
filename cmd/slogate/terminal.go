package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Terminal output: tables keep one line per row; what does not fit (a
// long or multi-line reason, a query) goes below the table as a numbered
// note, said once however many rows share it; colour only on a terminal
// and never with NO_COLOR set (https://no-color.org).

// palette colours text for a terminal, or not at all.
type palette struct{ on bool }

// paletteFor colours w when it is a terminal, TERM is not dumb and
// NO_COLOR is unset or empty.
func paletteFor(w io.Writer, getenv func(string) string) palette {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return palette{}
	}
	f, ok := w.(*os.File)
	if !ok {
		return palette{}
	}
	st, err := f.Stat()
	return palette{on: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

// ANSI colours: each code is 5 bytes, so a column whose every cell is
// painted (the header with plain) stays aligned in a tabwriter.
const (
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
	ansiPlain   = "\x1b[39m"
	ansiReset   = "\x1b[0m"
)

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return code + s + ansiReset
}

// verdict paints a decision or a verdict by what it means.
func (p palette) verdict(v string) string {
	switch strings.ToLower(v) {
	case "promote", "pass":
		return p.paint(ansiGreen, v)
	case "halt", "fail", "error", "firing":
		if strings.ToLower(v) == "error" {
			return p.paint(ansiMagenta, v)
		}
		return p.paint(ansiRed, v)
	case "wait":
		return p.paint(ansiYellow, v)
	}
	return p.paint(ansiPlain, v)
}

// notes are the numbered notes below a table; the same text twice is one
// note.
type notes struct {
	texts []string
	index map[string]int
}

// add returns the note's mark, "[n]".
func (n *notes) add(text string) string {
	if n.index == nil {
		n.index = map[string]int{}
	}
	i, ok := n.index[text]
	if !ok {
		n.texts = append(n.texts, text)
		i = len(n.texts)
		n.index[text] = i
	}
	return "[" + strconv.Itoa(i) + "]"
}

// print writes the notes wrapped at width, continuation lines indented.
func (n *notes) print(w io.Writer, width int) {
	if len(n.texts) == 0 {
		return
	}
	fmt.Fprintln(w)
	for i, t := range n.texts {
		mark := "[" + strconv.Itoa(i+1) + "] "
		indent := strings.Repeat(" ", len(mark))
		for j, line := range wrap(t, width-len(mark)) {
			if j == 0 {
				fmt.Fprintln(w, mark+line)
			} else {
				fmt.Fprintln(w, indent+line)
			}
		}
	}
}

// oneLine is the first line of s, at most max bytes (cut at a rune, with
// "…"), and whether anything was left out.
func oneLine(s string, max int) (string, bool) {
	line, rest, multi := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.TrimSpace(line)
	cut := multi && strings.TrimSpace(rest) != ""
	if len(line) > max {
		i := max - len("…")
		for i > 0 && !utf8Start(line[i]) {
			i--
		}
		line, cut = strings.TrimRight(line[:i], " ")+"…", true
	}
	return line, cut
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// wrap breaks s into lines of at most width bytes, at spaces where it can
// (a query has long words: those are cut), keeping its own line breaks.
func wrap(s string, width int) []string {
	if width < 20 {
		width = 20
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for len(word) > width {
				if line != "" {
					out = append(out, line)
					line = ""
				}
				out = append(out, word[:width])
				word = word[width:]
			}
			switch {
			case line == "":
				line = word
			case len(line)+1+len(word) <= width:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
		}
		out = append(out, line)
	}
	return out
}

// termWidth is the width to wrap notes at: $COLUMNS, else 100.
func termWidth(getenv func(string) string) int {
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 100
}
