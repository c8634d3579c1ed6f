// Package interrupt instruments a WebAssembly module so that its host can
// stop it cheaply: the design of Wasmtime's epoch interruption, applied to
// the module's bytes because wazero has no such mode.
//
// wazero's own time budget (RuntimeConfig.WithCloseOnContextDone) compiles an
// exit from machine code to Go into every loop header. Go's wasm backend
// turns every function into a loop, so guest code built with standard Go
// runs 3–5× slower with it. Instrument instead adds one exported, mutable
// i32 global (the flag) and, at the top of every loop body, the four
// instructions
//
//	global.get $flag
//	if
//	  unreachable
//	end
//
// which compile to a load and a branch that is never taken. The host sets
// the flag (api.MutableGlobal.Set) from another goroutine when a call runs
// past its budget; the guest then traps at its next loop iteration, and the
// call returns an error. A wasm program cannot run forever without
// executing a loop (recursion ends in a stack overflow trap), so every
// runaway call ends.
//
// Only the instruction set that compilers emit for wasm 2.0 modules without
// SIMD, threads or exceptions is understood; any other instruction makes
// Instrument fail with an error, and the host should then fall back to
// wazero's own checks.
package interrupt

import (
	"bytes"
	"errors"
	"fmt"
)

// Section ids (WebAssembly core spec §5.5).
const (
	secCustom = 0
	secImport = 2
	secGlobal = 6
	secExport = 7
	secCode   = 10
)

var magic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Instrument returns a copy of module with the interruption flag exported
// as a mutable i32 global named export and checked at every loop header.
// DWARF custom sections (".debug_*") are dropped: they address code by
// offset, and the offsets move.
func Instrument(module []byte, export string) ([]byte, error) {
	if !bytes.HasPrefix(module, magic) {
		return nil, errors.New("interrupt: not a WebAssembly 1.0 binary")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: module, off: len(magic)}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("interrupt: section %d: %w", id, r.err)
		}
		secs = append(secs, section{id, body})
	}
	// The flag's index follows the imported and the defined globals.
	var importedGlobals, definedGlobals uint32
	hasGlobal, hasExport := false, false
	for _, s := range secs {
		switch s.id {
		case secImport:
			n, err := countImportedGlobals(s.body)
			if err != nil {
				return nil, err
			}
			importedGlobals = n
		case secGlobal:
			hasGlobal = true
			sr := &reader{b: s.body}
			definedGlobals = sr.u32()
			if sr.err != nil {
				return nil, fmt.Errorf("interrupt: global section: %w", sr.err)
			}
		case secExport:
			hasExport = true
		}
	}
	flag := importedGlobals + definedGlobals

	out := append(make([]byte, 0, len(module)+len(module)/8), magic...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// A mutable i32 global initialised to 0.
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}
	newExport := appendName(nil, export)
	newExport = append(newExport, 0x03) // export kind: global
	newExport = appendU32(newExport, flag)
	for _, s := range secs {
		id := s.id
		// Keep sections in order: a missing global or export section goes
		// right before the first section that must follow it.
		if !hasGlobal && id != secCustom && id > secGlobal {
			emit(secGlobal, append(appendU32(nil, 1), newGlobal...))
			hasGlobal = true
		}
		if !hasExport && id != secCustom && id > secExport {
			emit(secExport, append(appendU32(nil, 1), newExport...))
			hasExport = true
		}
		switch id {
		case secCustom:
			sr := &reader{b: s.body}
			if name := sr.name(); sr.err == nil && len(name) >= 7 && name[:7] == ".debug_" {
				continue
			}
			emit(id, s.body)
		case secGlobal:
			emit(id, appendVec(s.body, newGlobal))
		case secExport:
			body, err := appendExport(s.body, export, newExport)
			if err != nil {
				return nil, err
			}
			emit(id, body)
		case secCode:
			body, err := instrumentCode(s.body, flag)
			if err != nil {
				return nil, err
			}
			emit(id, body)
		default:
			emit(id, s.body)
		}
	}
	if !hasGlobal {
		emit(secGlobal, append(appendU32(nil, 1), newGlobal...))
	}
	if !hasExport {
		emit(secExport, append(appendU32(nil, 1), newExport...))
	}
	return out, nil
}

// appendVec returns the vector body with one more element, elem.
func appendVec(body, elem []byte) []byte {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+1)
	out = append(out, body[r.off:]...)
	return append(out, elem...)
}

// appendExport adds the flag's export, refusing a module that already
// exports the name.
func appendExport(body []byte, name string, elem []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	for range n {
		if r.name() == name {
			return nil, fmt.Errorf("interrupt: module already exports %q", name)
		}
		r.byte()
		r.u32()
	}
	if r.err != nil {
		return nil, fmt.Errorf("interrupt: export section: %w", r.err)
	}
	return appendVec(body, elem), nil
}

func countImportedGlobals(body []byte) (uint32, error) {
	r := &reader{b: body}
	n := r.u32()
	var globals uint32
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: valtype, mut
			r.byte()
			r.byte()
			globals++
		default:
			return 0, fmt.Errorf("interrupt: import kind %#x not supported", kind)
		}
	}
	if r.err != nil {
		return 0, fmt.Errorf("interrupt: import section: %w", r.err)
	}
	return globals, nil
}

// instrumentCode rewrites every function body of a code section.
func instrumentCode(body []byte, flag uint32) ([]byte, error) {
	check := []byte{0x23} // global.get flag; if; unreachable; end
	check = appendU32(check, flag)
	check = append(check, 0x04, 0x40, 0x00, 0x0b)

	r := &reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fn []byte
	for i := range n {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("interrupt: function %d: %w", i, r.err)
		}
		var err error
		fn, err = instrumentFunc(fn[:0], code, check)
		if err != nil {
			return nil, fmt.Errorf("interrupt: function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, errors.New("interrupt: trailing bytes in the code section")
	}
	return out, nil
}

// instrumentFunc copies one function body to dst, inserting check after
// every loop instruction.
func instrumentFunc(dst, code, check []byte) ([]byte, error) {
	r := &reader{b: code}
	groups := r.u32()
	for range groups {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	start := 0
	for !r.done() {
		op := r.byte()
		switch {
		case op == 0x02 || op == 0x04: // block, if
			r.blockType()
		case op == 0x03: // loop
			r.blockType()
			dst = append(dst, code[start:r.off]...)
			dst = append(dst, check...)
			start = r.off
		case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b,
			op >= 0x45 && op <= 0xc4, op == 0xd1:
			// no immediates
		case op == 0x0c || op == 0x0d, op == 0x10, op >= 0x20 && op <= 0x26, op == 0xd2:
			r.u32() // br, br_if, call, local.*, global.*, table.get/set, ref.func
		case op == 0x0e: // br_table
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect
			r.u32()
			r.u32()
		case op == 0x1c: // select t*
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.byte()
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
			r.memarg()
		case op == 0x3f || op == 0x40: // memory.size, memory.grow
			r.u32()
		case op == 0x41:
			r.sleb(32)
		case op == 0x42:
			r.sleb(64)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0: // ref.null t
			r.byte()
		case op == 0xfc:
			if err := r.misc(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("opcode %#x at %d not supported", op, r.off-1)
		}
		if r.err != nil {
			return nil, fmt.Errorf("at %d: %w", r.off, r.err)
		}
	}
	return append(dst, code[start:]...), nil
}

// reader decodes the WebAssembly binary format; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of data")

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = errShort
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("LEB128 integer too long")
	return 0
}

// sleb skips a signed LEB128 integer of at most bits bits.
func (r *reader) sleb(bits int) {
	for n := 0; n < (bits+6)/7; n++ {
		if c := r.byte(); r.err != nil || c&0x80 == 0 {
			return
		}
	}
	r.err = errors.New("LEB128 integer too long")
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.u32()
	}
	r.u32()
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.u32()
}

// blockType skips a block type: empty (0x40), a value type, or an s33 type index.
func (r *reader) blockType() {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c == 0x40 || c >= 0x6f && c <= 0x7f {
			r.off++
			return
		}
	}
	r.sleb(33)
}

// misc skips the immediates of a 0xfc-prefixed instruction.
func (r *reader) misc() error {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init data, mem
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub >= 13 && sub <= 17 && sub != 14: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	default:
		return fmt.Errorf("instruction 0xfc %d not supported", sub)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}
