package lcc

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // plain atom or keyword: starts lower-case
	tQAtom          // 'quoted atom'
	tVar            // Upper or _
	tInt            // 12
	tFloat          // 0.85
	tString         // "text"
	tPunct          // operators and punctuation; text in tok.text
)

type token struct {
	kind      tokKind
	text      string // raw text for punctuation and identifiers; decoded value for strings and quoted atoms
	pos       Pos
	lineStart bool // first token on its line
}

// Comment is a source comment, kept so that the printer can keep it.
type Comment struct {
	Pos  Pos
	Text string
}

var keywords = map[string]bool{
	"then": true, "or": true, "par": true, "null": true,
	"and": true, "not": true, "is": true, "within": true,
}

// puncts is ordered longest first so that the scanner takes the longest match.
var puncts = []string{
	"<--", "\\==",
	"::", "=>", "<=", "<-", "=<", "==", "\\=", ">=",
	"(", ")", "[", "]", "|", ",", ".", "=", "<", ">", "+", "-", "*", "/",
}

type scanner struct {
	src      []byte
	file     *File
	off      int
	errs     *ErrorList
	comments []Comment
}

func (s *scanner) errorf(off int, msg string) {
	s.errs.Add(s.file.Position(Pos(off+1)), SevError, msg)
}

// scanAll turns the source into tokens, recording lexical errors and comments.
func (s *scanner) scanAll() []token {
	var toks []token
	lineStart := true
	for {
		// skip blanks and comments
		for s.off < len(s.src) {
			c := s.src[s.off]
			if c == '\n' {
				lineStart = true
				s.off++
			} else if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
				s.off++
			} else if c == '/' && s.off+1 < len(s.src) && s.src[s.off+1] == '/' {
				start := s.off
				for s.off < len(s.src) && s.src[s.off] != '\n' {
					s.off++
				}
				s.comments = append(s.comments, Comment{Pos: Pos(start + 1), Text: strings.TrimRight(string(s.src[start:s.off]), " \t\r")})
			} else if c == '/' && s.off+1 < len(s.src) && s.src[s.off+1] == '*' {
				start := s.off
				end := strings.Index(string(s.src[s.off+2:]), "*/")
				if end < 0 {
					s.errorf(start, "block comment not terminated")
					s.off = len(s.src)
					break
				}
				s.off += 2 + end + 2
				text := string(s.src[start:s.off])
				if strings.Contains(text, "\n") {
					lineStart = true
				}
				s.comments = append(s.comments, Comment{Pos: Pos(start + 1), Text: text})
			} else {
				break
			}
		}
		if s.off >= len(s.src) {
			toks = append(toks, token{kind: tEOF, pos: Pos(len(s.src) + 1), lineStart: true})
			return toks
		}
		tok, ok := s.next()
		if ok {
			tok.lineStart = lineStart
			lineStart = false
			toks = append(toks, tok)
		}
	}
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isUpper(c) || isDigit(c) || c == '_' }

func (s *scanner) next() (token, bool) {
	start := s.off
	c := s.src[s.off]
	pos := Pos(start + 1)
	switch {
	case isLower(c) || isUpper(c) || c == '_':
		for s.off < len(s.src) && isAlnum(s.src[s.off]) {
			s.off++
		}
		text := string(s.src[start:s.off])
		if isLower(c) {
			return token{kind: tIdent, text: text, pos: pos}, true
		}
		return token{kind: tVar, text: text, pos: pos}, true
	case isDigit(c):
		return s.number(), true
	case c == '\'':
		text, ok := s.quoted('\'')
		if !ok {
			return token{}, false
		}
		return token{kind: tQAtom, text: text, pos: pos}, true
	case c == '"':
		text, ok := s.quoted('"')
		if !ok {
			return token{}, false
		}
		return token{kind: tString, text: text, pos: pos}, true
	}
	for _, p := range puncts {
		if strings.HasPrefix(string(s.src[s.off:min(len(s.src), s.off+len(p))]), p) {
			s.off += len(p)
			if p == "<--" {
				p = "<-"
			}
			return token{kind: tPunct, text: p, pos: pos}, true
		}
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	if r == utf8.RuneError && size <= 1 {
		s.errorf(start, "invalid UTF-8 byte 0x"+strconv.FormatUint(uint64(c), 16))
		s.off++
	} else {
		s.errorf(start, "unexpected character "+strconv.QuoteRune(r))
		s.off += size
	}
	return token{}, false
}

func (s *scanner) number() token {
	start := s.off
	pos := Pos(start + 1)
	for s.off < len(s.src) && isDigit(s.src[s.off]) {
		s.off++
	}
	float := false
	// a decimal point only when a digit follows: "3." ends a clause
	if s.off+1 < len(s.src) && s.src[s.off] == '.' && isDigit(s.src[s.off+1]) {
		float = true
		s.off++
		for s.off < len(s.src) && isDigit(s.src[s.off]) {
			s.off++
		}
	}
	if s.off < len(s.src) && (s.src[s.off] == 'e' || s.src[s.off] == 'E') {
		j := s.off + 1
		if j < len(s.src) && (s.src[j] == '+' || s.src[j] == '-') {
			j++
		}
		if j < len(s.src) && isDigit(s.src[j]) {
			float = true
			s.off = j
			for s.off < len(s.src) && isDigit(s.src[s.off]) {
				s.off++
			}
		}
	}
	text := string(s.src[start:s.off])
	if float {
		return token{kind: tFloat, text: text, pos: pos}
	}
	return token{kind: tInt, text: text, pos: pos}
}

// quoted scans a quoted atom or string, decoding \" \' \\ \n \t.
func (s *scanner) quoted(q byte) (string, bool) {
	start := s.off
	s.off++
	var b strings.Builder
	what := "string"
	if q == '\'' {
		what = "quoted atom"
	}
	for {
		if s.off >= len(s.src) || s.src[s.off] == '\n' {
			s.errorf(start, what+" not terminated")
			return "", false
		}
		c := s.src[s.off]
		if c == q {
			s.off++
			return b.String(), true
		}
		if c == '\\' {
			if s.off+1 >= len(s.src) {
				s.errorf(start, what+" not terminated")
				s.off = len(s.src)
				return "", false
			}
			e := s.src[s.off+1]
			switch e {
			case '\\', '"', '\'':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				s.errorf(s.off, "unknown escape sequence \\"+string(rune(e))+` (use \" \' \\ \n or \t)`)
			}
			s.off += 2
			continue
		}
		b.WriteByte(c)
		s.off++
	}
}
