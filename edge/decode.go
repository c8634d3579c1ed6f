package edge

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxTokenLen bounds the token field; real tokens are token.Len bytes, so
// anything much longer is refused before it is copied.
const maxTokenLen = 128

// maxRawWordLen bounds one string of "words" before normalisation (which
// may trim white space and fold ligatures); the normal form is at most
// shared.MaxWordBytes.
const maxRawWordLen = 256

// scaleOff is the value decoders store for an integer too large for any
// scale, so the poll's range check reports it with the right message.
const scaleOff = shared.MaxScaleAbs + 1

// ballot is a decoded vote request body. It holds no references to the body.
type ballot struct {
	Token    string // "" when the body carries none
	Choices  [shared.MaxChoicesCap]uint8
	N        int  // number of choices
	Multiple bool // "choices" (array) rather than "choice" was used
	// Field is the ballot key the body used: fieldChoice, fieldChoices,
	// fieldValue or fieldWords.
	Field voteField
	Value int64 // "value" (scale polls), clamped to ±scaleOff
	Words [shared.MaxWordsCap]string
	NW    int // number of words
}

// words returns the decoded words.
func (b *ballot) words() []string { return b.Words[:b.NW] }

// choices returns the decoded choices.
func (b *ballot) choices() []uint8 { return b.Choices[:b.N] }

func errBody(format string, args ...any) error {
	return shared.Errorf(shared.EINVALID, "malformed vote: "+format, args...)
}

// decodeVoteJSON decodes a vote body {"token":"...","choice":N},
// {"token":"...","choices":[N,...]}, {"token":"...","value":V} or
// {"token":"...","words":["...",...]} strictly: one object, only these
// keys, each at most once, exactly one ballot key, choices integers 0-63
// (at most shared.MaxChoicesCap), a value an integer (possibly negative),
// words at most shared.MaxWordsCap strings, no trailing data. Which ballot
// key a poll takes is checked later, against its kind. The token is
// optional here (it may come from a header or cookie). Errors are EINVALID.
// It is hand-written: no reflection, no allocation but the token and word
// strings.
func decodeVoteJSON(data []byte, b *ballot) error {
	*b = ballot{}
	p := jsonParser{data: data}
	p.skipSpace()
	if !p.consume('{') {
		return errBody("body must be a JSON object")
	}
	var f ballotFields
	p.skipSpace()
	if p.consume('}') {
		return finishBallot(&p, &f)
	}
	for {
		p.skipSpace()
		key, err := p.key()
		if err != nil {
			return err
		}
		p.skipSpace()
		if !p.consume(':') {
			return errBody("expected ':' after key at byte %d", p.pos)
		}
		p.skipSpace()
		field, err := f.claim(key)
		if err != nil {
			return err
		}
		if field != fieldToken {
			b.Field = field
		}
		switch field {
		case fieldToken:
			b.Token, err = p.str(maxTokenLen, "token")
		case fieldChoice:
			b.Choices[0], err = p.choice()
			b.N = 1
		case fieldChoices:
			b.Multiple = true
			err = p.choiceArray(b)
		case fieldValue:
			b.Value, err = p.value()
		case fieldWords:
			err = p.wordArray(b)
		}
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return finishBallot(&p, &f)
		}
		return errBody("expected ',' or '}' at byte %d", p.pos)
	}
}

func finishBallot(p *jsonParser, f *ballotFields) error {
	p.skipSpace()
	if p.pos != len(p.data) {
		return errBody("trailing data after the JSON object")
	}
	return f.done()
}

// voteField is a field of a vote body.
type voteField int

const (
	fieldToken voteField = iota
	fieldChoice
	fieldChoices
	fieldValue
	fieldWords
)

// ballotFields checks the fields of a vote body against the rules both
// formats share: only "token", "choice", "choices", "value" and "words",
// each at most once, exactly one of the last four.
type ballotFields struct {
	seenToken, seenChoice bool
}

// claim names the field key is, refusing an unknown or repeated one.
func (f *ballotFields) claim(key string) (voteField, error) {
	switch key {
	case "token":
		if f.seenToken {
			return 0, errBody("duplicate key \"token\"")
		}
		f.seenToken = true
		return fieldToken, nil
	case "choice", "choices", "value", "words":
		if f.seenChoice {
			return 0, errBody("give one of \"choice\", \"choices\", \"value\" or \"words\", once")
		}
		f.seenChoice = true
		switch key {
		case "choices":
			return fieldChoices, nil
		case "value":
			return fieldValue, nil
		case "words":
			return fieldWords, nil
		}
		return fieldChoice, nil
	}
	return 0, errBody("unknown key %s (allowed: token, choice, choices, value, words)", strconv.Quote(key))
}

// done reports a body that named no choice.
func (f *ballotFields) done() error {
	if !f.seenChoice {
		return shared.Errorf(shared.EINVALID, "a vote needs \"choice\", \"choices\", \"value\" or \"words\"")
	}
	return nil
}

// jsonParser is a cursor over a JSON text.
type jsonParser struct {
	data []byte
	pos  int
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// key reads an object key. Keys we accept are short ASCII, so a key with
// escapes or longer than 16 bytes is reported as unknown (by its raw text).
func (p *jsonParser) key() (string, error) {
	if !p.consume('"') {
		return "", errBody("expected a string key at byte %d", p.pos)
	}
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			k := p.data[start:p.pos]
			p.pos++
			switch string(k) { // no allocation: compiler-optimised comparison
			case "token":
				return "token", nil
			case "choice":
				return "choice", nil
			case "choices":
				return "choices", nil
			case "value":
				return "value", nil
			case "words":
				return "words", nil
			}
			if len(k) > 32 {
				k = k[:32]
			}
			return string(k), nil
		}
		if c == '\\' {
			p.pos++
		} else if c < 0x20 {
			return "", errBody("control character in string at byte %d", p.pos)
		}
		p.pos++
	}
	return "", errBody("unterminated string")
}

// str reads a JSON string of at most max decoded bytes, decoding escapes;
// name is the field, for messages.
func (p *jsonParser) str(max int, name string) (string, error) {
	if !p.consume('"') {
		return "", errBody("%q must be a string", name)
	}
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			s := p.data[start:p.pos]
			p.pos++
			if len(s) > max {
				return "", errBody("%q longer than %d bytes", name, max)
			}
			if !utf8.Valid(s) {
				return "", errBody("string is not valid UTF-8")
			}
			return string(s), nil
		case c == '\\':
			return p.strSlow(start, max, name)
		case c < 0x20:
			return "", errBody("control character in string at byte %d", p.pos)
		}
		p.pos++
	}
	return "", errBody("unterminated string")
}

// strSlow decodes a string with escapes, starting at start (after the quote).
func (p *jsonParser) strSlow(start, max int, name string) (string, error) {
	var buf [maxRawWordLen + 4]byte
	out := buf[:0]
	p.pos = start
	for p.pos < len(p.data) {
		if len(out) > max {
			return "", errBody("%q longer than %d bytes", name, max)
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(out) {
				return "", errBody("string is not valid UTF-8")
			}
			return string(out), nil
		case c < 0x20:
			return "", errBody("control character in string at byte %d", p.pos)
		case c != '\\':
			out = append(out, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
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
				return "", errBody("bad \\u escape at byte %d", p.pos)
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok = p.hex4(); !ok {
						return "", errBody("bad \\u escape at byte %d", p.pos)
					}
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", errBody("unpaired surrogate in string")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errBody("bad escape \\%c in string", e)
		}
	}
	return "", errBody("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// choice reads a non-negative JSON integer below shared.MaxOptions.
func (p *jsonParser) choice() (uint8, error) {
	start := p.pos
	var n int
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		if n < 1000 {
			n = n*10 + int(p.data[p.pos]-'0')
		}
		p.pos++
	}
	digits := p.pos - start
	if digits == 0 {
		if p.pos < len(p.data) && p.data[p.pos] == '-' {
			return 0, shared.Errorf(shared.EINVALID, "a choice must be an option index 0-%d", shared.MaxOptions-1)
		}
		return 0, errBody("a choice must be an integer option index")
	}
	if digits > 1 && p.data[start] == '0' {
		return 0, errBody("number with a leading zero")
	}
	if p.pos < len(p.data) {
		if c := p.data[p.pos]; c == '.' || c == 'e' || c == 'E' {
			return 0, errBody("a choice must be an integer option index")
		}
	}
	if n >= shared.MaxOptions {
		return 0, shared.Errorf(shared.EINVALID, "a choice must be an option index 0-%d", shared.MaxOptions-1)
	}
	return uint8(n), nil
}

// value reads a JSON integer, possibly negative, for a scale poll; one
// beyond any scale is clamped to ±scaleOff (the poll's range check then
// refuses it).
func (p *jsonParser) value() (int64, error) {
	neg := p.consume('-')
	start := p.pos
	var n int64
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		if n < scaleOff {
			n = n*10 + int64(p.data[p.pos]-'0')
		}
		p.pos++
	}
	digits := p.pos - start
	if digits == 0 {
		return 0, errBody("\"value\" must be an integer")
	}
	if digits > 1 && p.data[start] == '0' {
		return 0, errBody("number with a leading zero")
	}
	if p.pos < len(p.data) {
		if c := p.data[p.pos]; c == '.' || c == 'e' || c == 'E' {
			return 0, errBody("\"value\" must be an integer")
		}
	}
	n = min(n, scaleOff)
	if neg {
		n = -n
	}
	return n, nil
}

// wordArray reads "words": an array of at most shared.MaxWordsCap strings.
func (p *jsonParser) wordArray(b *ballot) error {
	return p.array("words", "strings", func() error {
		if b.NW == len(b.Words) {
			return shared.Errorf(shared.EINVALID, "at most %d words allowed", len(b.Words))
		}
		w, err := p.str(maxRawWordLen, "words")
		if err != nil {
			return err
		}
		b.Words[b.NW] = w
		b.NW++
		return nil
	})
}

func (p *jsonParser) choiceArray(b *ballot) error {
	return p.array("choices", "option indexes", func() error {
		if b.N == len(b.Choices) {
			return shared.Errorf(shared.EINVALID, "at most %d choices allowed", len(b.Choices))
		}
		c, err := p.choice()
		if err != nil {
			return err
		}
		b.Choices[b.N] = c
		b.N++
		return nil
	})
}

// array reads the JSON array of key, calling elem at each element (with
// the whitespace before it skipped); what names its elements in the error
// for a value that is not an array.
func (p *jsonParser) array(key, what string, elem func() error) error {
	if !p.consume('[') {
		return errBody("\"%s\" must be an array of %s", key, what)
	}
	p.skipSpace()
	if p.consume(']') {
		return nil
	}
	for {
		p.skipSpace()
		if err := elem(); err != nil {
			return err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return nil
		}
		return errBody("expected ',' or ']' in \"%s\" at byte %d", key, p.pos)
	}
}

// decodeVoteMsgpack decodes a MessagePack vote body: a map with the keys
// "token" (str), and "choice" (uint), "choices" (array of uint, or bin),
// "value" (int) or "words" (array of str), with the same rules as
// decodeVoteJSON. No reflection.
func decodeVoteMsgpack(data []byte, b *ballot) error {
	*b = ballot{}
	r := bytes.NewReader(data)
	d := msgpack.GetDecoder()
	d.Reset(r)
	defer msgpack.PutDecoder(d)
	if c, err := d.PeekCode(); err != nil || !(msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32) {
		return errBody("body must be a MessagePack map")
	}
	n, err := d.DecodeMapLen()
	if err != nil || n < 1 || n > 2 {
		return errBody("MessagePack map must have a token and a choice")
	}
	var f ballotFields
	var kbuf [16]byte
	for i := 0; i < n; i++ {
		k, err := msgpackRaw(d, true, len(kbuf), kbuf[:0])
		if err != nil {
			return errBody("map keys must be short strings")
		}
		field, err := f.claim(string(k))
		if err != nil {
			return err
		}
		if field != fieldToken {
			b.Field = field
		}
		switch field {
		case fieldToken:
			b.Token, err = msgpackToken(d)
		case fieldChoice:
			b.Choices[0], err = msgpackChoice(d)
			b.N = 1
		case fieldChoices:
			b.Multiple = true
			err = msgpackChoices(d, b)
		case fieldValue:
			b.Value, err = msgpackValue(d)
		case fieldWords:
			err = msgpackWords(d, b)
		}
		if err != nil {
			return err
		}
	}
	if r.Len() != 0 {
		return errBody("trailing data after the MessagePack map")
	}
	return f.done()
}

// msgpackToken reads the "token" string.
func msgpackToken(d *msgpack.Decoder) (string, error) {
	var tbuf [maxTokenLen]byte
	t, err := msgpackRaw(d, true, maxTokenLen, tbuf[:0])
	if err != nil {
		return "", errBody("\"token\" must be a string of at most %d bytes", maxTokenLen)
	}
	if !utf8.Valid(t) {
		return "", errBody("string is not valid UTF-8")
	}
	return string(t), nil
}

func isMsgpackStr(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func isMsgpackBin(c byte) bool {
	return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32
}

// msgpackRaw reads a str (str=true) or bin of at most max bytes into scratch.
func msgpackRaw(d *msgpack.Decoder, str bool, max int, scratch []byte) ([]byte, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if str && !isMsgpackStr(c) || !str && !isMsgpackBin(c) {
		return nil, errBody("wrong MessagePack type")
	}
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > max || n > cap(scratch) {
		return nil, errBody("MessagePack string too long")
	}
	scratch = scratch[:n]
	if err := d.ReadFull(scratch); err != nil {
		return nil, err
	}
	return scratch, nil
}

// msgpackIntCode reports whether a MessagePack type code starts a signed
// integer (a negative fixint or an int 8-64) or an unsigned one (a positive
// fixint or a uint 8-64).
func msgpackIntCode(c byte) (signed, unsigned bool) {
	fixed := msgpcode.IsFixedNum(c)
	signed = fixed && int8(c) < 0 || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64
	unsigned = fixed && int8(c) >= 0 || c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 || c == msgpcode.Uint64
	return signed, unsigned
}

func msgpackChoice(d *msgpack.Decoder) (uint8, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, errBody("truncated MessagePack")
	}
	signed, unsigned := msgpackIntCode(c)
	switch {
	case signed:
		n, err := d.DecodeInt64()
		if err != nil {
			return 0, errBody("truncated MessagePack")
		}
		if n < 0 || n >= shared.MaxOptions {
			return 0, shared.Errorf(shared.EINVALID, "a choice must be an option index 0-%d", shared.MaxOptions-1)
		}
		return uint8(n), nil
	case unsigned:
		n, err := d.DecodeUint64()
		if err != nil {
			return 0, errBody("truncated MessagePack")
		}
		if n >= shared.MaxOptions {
			return 0, shared.Errorf(shared.EINVALID, "a choice must be an option index 0-%d", shared.MaxOptions-1)
		}
		return uint8(n), nil
	}
	return 0, errBody("a choice must be an integer option index")
}

func msgpackChoices(d *msgpack.Decoder, b *ballot) error {
	c, err := d.PeekCode()
	if err != nil {
		return errBody("truncated MessagePack")
	}
	if isMsgpackBin(c) {
		raw, err := msgpackRaw(d, false, len(b.Choices), b.Choices[:0])
		if err != nil {
			return shared.Errorf(shared.EINVALID, "at most %d choices allowed", len(b.Choices))
		}
		for _, ch := range raw {
			if ch >= shared.MaxOptions {
				return shared.Errorf(shared.EINVALID, "a choice must be an option index 0-%d", shared.MaxOptions-1)
			}
		}
		b.N = len(raw)
		return nil
	}
	if !(msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32) {
		return errBody("\"choices\" must be an array of option indexes")
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return errBody("truncated MessagePack")
	}
	if n > len(b.Choices) {
		return shared.Errorf(shared.EINVALID, "at most %d choices allowed", len(b.Choices))
	}
	for i := 0; i < n; i++ {
		ch, err := msgpackChoice(d)
		if err != nil {
			return err
		}
		b.Choices[i] = ch
	}
	b.N = n
	return nil
}

// msgpackValue reads "value": any MessagePack integer, clamped to ±scaleOff.
func msgpackValue(d *msgpack.Decoder) (int64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, errBody("truncated MessagePack")
	}
	signed, unsigned := msgpackIntCode(c)
	switch {
	case signed:
		n, err := d.DecodeInt64()
		if err != nil {
			return 0, errBody("truncated MessagePack")
		}
		return max(-scaleOff, min(n, scaleOff)), nil
	case unsigned:
		n, err := d.DecodeUint64()
		if err != nil {
			return 0, errBody("truncated MessagePack")
		}
		return int64(min(n, scaleOff)), nil
	}
	return 0, errBody("\"value\" must be an integer")
}

// msgpackWords reads "words": an array of at most shared.MaxWordsCap strs.
func msgpackWords(d *msgpack.Decoder, b *ballot) error {
	c, err := d.PeekCode()
	if err != nil {
		return errBody("truncated MessagePack")
	}
	if !(msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32) {
		return errBody("\"words\" must be an array of strings")
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return errBody("truncated MessagePack")
	}
	if n > len(b.Words) {
		return shared.Errorf(shared.EINVALID, "at most %d words allowed", len(b.Words))
	}
	var buf [maxRawWordLen]byte
	for i := 0; i < n; i++ {
		w, err := msgpackRaw(d, true, maxRawWordLen, buf[:0])
		if err != nil {
			return errBody("\"words\" must be strings of at most %d bytes", maxRawWordLen)
		}
		if !utf8.Valid(w) {
			return errBody("string is not valid UTF-8")
		}
		b.Words[i] = string(w)
	}
	b.NW = n
	return nil
}
