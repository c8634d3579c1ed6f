package jwt

import (
	"strconv"
	"unicode/utf8"
)

// A tiny strict JSON reader for JOSE headers, JWT claims and JWKS: enough
// for objects of strings, integers, arrays and nested objects, with no
// reflection (TinyGo's encoding/json has gaps, and reflection costs wasm
// size and start-up). Duplicate keys are refused: two "alg" or two "sub"
// members would let two parsers disagree about what was signed.

// maxDepth bounds nesting (a JWKS is three levels deep).
const maxDepth = 8

type kind uint8

const (
	kString kind = iota + 1
	kNumber
	kObject
	kArray
	kLiteral // true, false, null
)

// value is one parsed JSON value.
type value struct {
	kind kind
	str  string           // kString: decoded; kNumber, kLiteral: raw text
	obj  map[string]value // kObject
	arr  []value          // kArray
	// start and end delimit the value's text in the parsed data.
	start, end int
}

// raw returns v's text in data, the bytes parseJSON was given.
func (v value) raw(data []byte) []byte { return data[v.start:v.end] }

type parser struct {
	b     []byte
	pos   int
	depth int
}

func errJSON(what string) error { return malformed("bad JSON: " + what) }

// parseJSON parses data as one JSON value with nothing after it.
func parseJSON(data []byte) (value, error) {
	p := parser{b: data}
	v, err := p.value()
	if err != nil {
		return value{}, err
	}
	p.space()
	if p.pos != len(p.b) {
		return value{}, errJSON("trailing data")
	}
	return v, nil
}

func (p *parser) space() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (value, error) {
	p.space()
	start := p.pos
	v, err := p.value1()
	v.start, v.end = start, p.pos
	return v, err
}

func (p *parser) value1() (value, error) {
	if p.pos >= len(p.b) {
		return value{}, errJSON("unexpected end")
	}
	switch c := p.b[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		return value{kind: kString, str: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.b)-p.pos >= len(lit) && string(p.b[p.pos:p.pos+len(lit)]) == lit {
				p.pos += len(lit)
				return value{kind: kLiteral, str: lit}, nil
			}
		}
	}
	return value{}, errJSON("unexpected character")
}

func (p *parser) object() (value, error) {
	if p.depth++; p.depth > maxDepth {
		return value{}, errJSON("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // {
	v := value{kind: kObject, obj: map[string]value{}}
	p.space()
	if p.pos < len(p.b) && p.b[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.b) || p.b[p.pos] != '"' {
			return value{}, errJSON("expected a key")
		}
		k, err := p.string()
		if err != nil {
			return value{}, err
		}
		if _, dup := v.obj[k]; dup {
			return value{}, errJSON("duplicate key")
		}
		p.space()
		if p.pos >= len(p.b) || p.b[p.pos] != ':' {
			return value{}, errJSON("expected ':'")
		}
		p.pos++
		m, err := p.value()
		if err != nil {
			return value{}, err
		}
		v.obj[k] = m
		p.space()
		if p.pos < len(p.b) && p.b[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.b) && p.b[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		return value{}, errJSON("expected ',' or '}'")
	}
}

func (p *parser) array() (value, error) {
	if p.depth++; p.depth > maxDepth {
		return value{}, errJSON("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // [
	v := value{kind: kArray}
	p.space()
	if p.pos < len(p.b) && p.b[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		m, err := p.value()
		if err != nil {
			return value{}, err
		}
		v.arr = append(v.arr, m)
		p.space()
		if p.pos < len(p.b) && p.b[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.b) && p.b[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		return value{}, errJSON("expected ',' or ']'")
	}
}

func (p *parser) number() (value, error) {
	start := p.pos
	if p.b[p.pos] == '-' {
		p.pos++
	}
	digits := 0
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			p.pos++
			digits++
			continue
		}
		break
	}
	if digits == 0 {
		return value{}, errJSON("bad number")
	}
	return value{kind: kNumber, str: string(p.b[start:p.pos])}, nil
}

// string reads a JSON string at p.pos (a '"'), decoding escapes.
func (p *parser) string() (string, error) {
	p.pos++ // "
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			s := p.b[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return "", errJSON("string is not UTF-8")
			}
			return string(s), nil
		case c == '\\':
			return p.stringSlow(start)
		case c < 0x20:
			return "", errJSON("control character in string")
		}
		p.pos++
	}
	return "", errJSON("unterminated string")
}

func (p *parser) stringSlow(start int) (string, error) {
	out := append([]byte(nil), p.b[start:p.pos]...)
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(out) {
				return "", errJSON("string is not UTF-8")
			}
			return string(out), nil
		case c < 0x20:
			return "", errJSON("control character in string")
		case c != '\\':
			out = append(out, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.b) {
			break
		}
		e := p.b[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", errJSON("bad \\u escape")
			}
			if r >= 0xD800 && r < 0xDC00 && p.pos+1 < len(p.b) && p.b[p.pos] == '\\' && p.b[p.pos+1] == 'u' {
				p.pos += 2
				r2, ok := p.hex4()
				if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
					return "", errJSON("bad surrogate pair")
				}
				r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errJSON("bad escape")
		}
	}
	return "", errJSON("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.b[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(n), true
}

// member returns obj's member k and whether it is present.
func (v value) member(k string) (value, bool) {
	m, ok := v.obj[k]
	return m, ok
}

// stringMember returns obj's string member k: "" and ok=true when absent,
// ok=false when present but not a string.
func (v value) stringMember(k string) (string, bool) {
	m, ok := v.obj[k]
	if !ok {
		return "", true
	}
	if m.kind != kString {
		return "", false
	}
	return m.str, true
}

// intMember returns obj's numeric member k as whole seconds: present
// reports whether it exists, ok whether it is a number (a fraction is cut).
func (v value) intMember(k string) (n int64, present, ok bool) {
	m, present := v.obj[k]
	if !present {
		return 0, false, true
	}
	if m.kind != kNumber {
		return 0, true, false
	}
	f, err := strconv.ParseFloat(m.str, 64)
	if err != nil || f != f || f > 1<<53 || f < -(1<<53) {
		return 0, true, false
	}
	return int64(f), true, true
}
