// Package interrupt instruments a WebAssembly module so that its host can
// stop it cheaply and soundly: Wasmtime's fuel/epoch idea, applied to the
// module's bytes because wazero's own mechanism is costly.
//
// wazero's time budget (RuntimeConfig.WithCloseOnContextDone) compiles an
// exit from machine code to Go into every loop header: that exit is what
// makes it sound (see below), and it is also why guest code built with
// standard Go, whose wasm backend turns every function into a loop, runs
// 2–3× slower with it.
//
// Instrument adds a mutable i32 global, the countdown, and a function
// import, the tick, and inserts at the top of every loop body and at the
// entry of the functions that need it (see entryChecks: those that may call
// another before a loop's check has run, and not all of those)
//
//	global.get $countdown   i32.const -1   i32.add   global.set $countdown
//	global.get $countdown   i32.eqz
//	if
//	  i32.const every   global.set $countdown
//	  call $tick
//	end
//
// that is: a decrement and a branch that is not taken, and one call to the
// host every `every` checks. A wasm program cannot run for long without
// passing a loop header or a function entry (straight-line code between two
// of them is bounded by the module's size), so the host's tick runs at a
// bounded interval however the guest spins: a tight loop, a loop of calls,
// recursion without loops.
//
// Why not a flag the host sets (global.get; if; unreachable), as this
// package once did: the flag has to be set by another goroutine (a timer),
// and a goroutine running wazero's machine code is never at a Go safe
// point. When the Go runtime stops the world (every garbage collection
// does) it waits for that goroutine, which never stops, while every other
// goroutine — the timer that would set the flag included — is already
// stopped: the process stalls and the guest runs past its budget. (wazero's
// optimizing compiler does not hoist the global's load — it has no
// loop-invariant code motion, and it reloads mutable globals after every
// call — so the load was never the problem.) The tick is a real exit to
// Go: the goroutine passes a safe point there, and the tick decides by
// itself, from the clock, without waiting for any other goroutine.
//
// Only the instruction set that compilers emit for wasm 2.0 modules without
// SIMD, threads, tail calls or exceptions is understood; any other
// instruction makes Instrument fail with an error, and the host should then
// fall back to wazero's own checks.
package interrupt

import (
	"bytes"
	"errors"
	"fmt"
)

// Section ids (WebAssembly core spec §5.5).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// rank is a known section's place in the binary's required order.
func rank(id byte) int {
	switch id {
	case secTag:
		return 55 // between memory and global
	case secDataCount:
		return 95 // between element and code
	}
	return int(id) * 10
}

var magic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Config says what Instrument inserts.
type Config struct {
	// Module and Name name the function import the checks call, of type
	// () -> (). The module must not import it already.
	Module, Name string
	// Every is the number of checks between two calls (at least 1).
	Every uint32
}

type section struct {
	id   byte
	body []byte
}

// Instrument returns a copy of module with the countdown checks inserted
// and the tick imported as c says. The new import is the last function
// import, so every defined function's index moves up by one; calls,
// ref.func, exports, the start function, element segments and the "name"
// section are renumbered. DWARF custom sections (".debug_*") are dropped:
// they address code by offset, and the offsets move.
func Instrument(module []byte, c Config) ([]byte, error) {
	if !bytes.HasPrefix(module, magic) {
		return nil, errors.New("interrupt: not a WebAssembly 1.0 binary")
	}
	if c.Every == 0 || c.Every > 1<<30 {
		return nil, fmt.Errorf("interrupt: Every %d out of range", c.Every)
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
	var numTypes, importedFuncs, importedGlobals, definedGlobals uint32
	for _, s := range secs {
		sr := &reader{b: s.body}
		switch s.id {
		case secType:
			numTypes = sr.u32()
		case secImport:
			f, g, err := countImports(s.body, c)
			if err != nil {
				return nil, err
			}
			importedFuncs, importedGlobals = f, g
		case secGlobal:
			definedGlobals = sr.u32()
		}
		if sr.err != nil {
			return nil, fmt.Errorf("interrupt: section %d: %w", s.id, sr.err)
		}
	}
	rw := &rewriter{
		tick:      importedFuncs,
		countdown: importedGlobals + definedGlobals,
	}
	rw.check = rw.checkCode(c.Every)

	// The new section elements.
	newType := []byte{0x60, 0x00, 0x00} // func () -> ()
	newImport := appendName(appendName(nil, c.Module), c.Name)
	newImport = append(newImport, 0x00) // kind: func
	newImport = appendU32(newImport, numTypes)
	newGlobal := []byte{0x7f, 0x01, 0x41} // i32, mutable, i32.const every
	newGlobal = appendSLEB(newGlobal, int64(c.Every))
	newGlobal = append(newGlobal, 0x0b)
	pending := []section{
		{secType, newType},
		{secImport, newImport},
		{secGlobal, newGlobal},
	}

	out := append(make([]byte, 0, len(module)+len(module)/4), magic...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// flush emits, as sections of their own, the new elements whose section
	// the module lacks and that must come before a section of rank before.
	flush := func(before int) {
		for len(pending) > 0 && rank(pending[0].id) < before {
			emit(pending[0].id, append(appendU32(nil, 1), pending[0].body...))
			pending = pending[1:]
		}
	}
	for _, s := range secs {
		if s.id == secCustom {
			sr := &reader{b: s.body}
			name := sr.name()
			if sr.err != nil {
				return nil, errors.New("interrupt: a custom section without a name")
			}
			switch {
			case len(name) >= 7 && name[:7] == ".debug_":
				continue
			case name == "name":
				body, err := rw.nameSection(s.body, sr.off)
				if err != nil {
					return nil, err
				}
				emit(s.id, body)
			default:
				emit(s.id, s.body)
			}
			continue
		}
		flush(rank(s.id))
		var body []byte
		var err error
		switch s.id {
		case secType, secImport, secGlobal:
			if len(pending) > 0 && pending[0].id == s.id {
				if s.id == secGlobal {
					body, err = rw.globalSection(s.body)
					if err == nil {
						body = appendVec(body, pending[0].body)
					}
				} else {
					body = appendVec(s.body, pending[0].body)
				}
				pending = pending[1:]
			} else {
				body = s.body
			}
		case secExport:
			body, err = rw.exportSection(s.body)
		case secStart:
			sr := &reader{b: s.body}
			body = appendU32(nil, rw.fn(sr.u32()))
			err = sr.err
		case secElement:
			body, err = rw.elementSection(s.body)
		case secCode:
			body, err = rw.codeSection(s.body)
		default:
			body = s.body
		}
		if err != nil {
			return nil, err
		}
		emit(s.id, body)
	}
	flush(1 << 30)
	return out, nil
}

// rewriter renumbers functions and inserts the checks.
type rewriter struct {
	tick      uint32 // the new import's function index
	countdown uint32 // the new global's index
	check     []byte
}

// fn is the new index of the function that had index i.
func (rw *rewriter) fn(i uint32) uint32 {
	if i >= rw.tick {
		return i + 1
	}
	return i
}

func (rw *rewriter) checkCode(every uint32) []byte {
	g := rw.countdown
	b := append(appendU32([]byte{0x23}, g), 0x41, 0x7f, 0x6a, 0x24) // global.get; i32.const -1; i32.add; global.set
	b = appendU32(b, g)
	b = append(appendU32(append(b, 0x23), g), 0x45, 0x04, 0x40, 0x41) // global.get; i32.eqz; if; i32.const
	b = appendSLEB(b, int64(every))
	b = appendU32(append(b, 0x24), g) // global.set
	b = appendU32(append(b, 0x10), rw.tick)
	return append(b, 0x0b)
}

// appendVec returns the vector body with one more element, elem.
func appendVec(body, elem []byte) []byte {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+1)
	out = append(out, body[r.off:]...)
	return append(out, elem...)
}

// countImports counts the function and global imports, refusing a module
// that already imports the tick.
func countImports(body []byte, c Config) (funcs, globals uint32, err error) {
	r := &reader{b: body}
	n := r.u32()
	for range n {
		mod, name := r.name(), r.name()
		if mod == c.Module && name == c.Name {
			return 0, 0, fmt.Errorf("interrupt: module already imports %s.%s", mod, name)
		}
		switch kind := r.byte(); kind {
		case 0x00: // func: type index
			r.u32()
			funcs++
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
			return 0, 0, fmt.Errorf("interrupt: import kind %#x not supported", kind)
		}
	}
	if r.err != nil {
		return 0, 0, fmt.Errorf("interrupt: import section: %w", r.err)
	}
	return funcs, globals, nil
}

// globalSection renumbers ref.func in the globals' initialisers.
func (rw *rewriter) globalSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		out = append(out, r.bytes(2)...) // valtype, mut
		out = rw.constExpr(out, r)
	}
	if r.err != nil {
		return nil, fmt.Errorf("interrupt: global section: %w", r.err)
	}
	return out, nil
}

func (rw *rewriter) exportSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		out = appendName(out, r.name())
		kind, idx := r.byte(), r.u32()
		if kind == 0x00 {
			idx = rw.fn(idx)
		}
		out = appendU32(append(out, kind), idx)
	}
	if r.err != nil {
		return nil, fmt.Errorf("interrupt: export section: %w", r.err)
	}
	return out, nil
}

// elementSection renumbers the functions of every element segment.
func (rw *rewriter) elementSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		flags := r.u32()
		out = appendU32(out, flags)
		if flags > 7 {
			return nil, fmt.Errorf("interrupt: element segment kind %d not supported", flags)
		}
		if flags == 2 || flags == 6 { // table index
			out = appendU32(out, r.u32())
		}
		if flags&1 == 0 { // active: offset
			out = rw.constExpr(out, r)
		}
		if flags&3 != 0 { // elemkind or reftype
			out = append(out, r.byte())
		}
		cnt := r.u32()
		out = appendU32(out, cnt)
		for range cnt {
			if flags&4 == 0 {
				out = appendU32(out, rw.fn(r.u32()))
			} else {
				out = rw.constExpr(out, r)
			}
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("interrupt: element section: %w", r.err)
	}
	return out, nil
}

// constExpr copies a constant expression, renumbering ref.func.
func (rw *rewriter) constExpr(out []byte, r *reader) []byte {
	for r.err == nil {
		start := r.off
		op := r.byte()
		switch {
		case op == 0x0b:
			return append(out, op)
		case op == 0xd2: // ref.func
			out = appendU32(append(out, op), rw.fn(r.u32()))
			continue
		case op == 0x41:
			r.sleb(32)
		case op == 0x42:
			r.sleb(64)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0x23: // global.get
			r.u32()
		case op == 0xd0: // ref.null t
			r.byte()
		case op == 0x6a, op == 0x6b, op == 0x6c, op == 0x7c, op == 0x7d, op == 0x7e: // extended constants
		default:
			r.err = fmt.Errorf("opcode %#x in a constant expression not supported", op)
			return out
		}
		out = append(out, r.b[start:r.off]...)
	}
	return out
}

// nameSection renumbers the function and local names of the "name" custom
// section (subsections 1 and 2) and drops the subsections indexed by
// function that it does not know; off is where its subsections start.
func (rw *rewriter) nameSection(body []byte, off int) ([]byte, error) {
	out := append([]byte(nil), body[:off]...)
	r := &reader{b: body, off: off}
	for !r.done() {
		id := r.byte()
		sub := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		sr := &reader{b: sub}
		var nb []byte
		switch id {
		case 0: // module name
			nb = sub
		case 1: // function names: vec(idx name)
			n := sr.u32()
			nb = appendU32(nil, n)
			for range n {
				nb = appendU32(nb, rw.fn(sr.u32()))
				nb = appendName(nb, sr.name())
			}
		case 2: // local names: vec(idx vec(idx name))
			n := sr.u32()
			nb = appendU32(nil, n)
			for range n {
				nb = appendU32(nb, rw.fn(sr.u32()))
				m := sr.u32()
				nb = appendU32(nb, m)
				for range m {
					nb = appendU32(nb, sr.u32())
					nb = appendName(nb, sr.name())
				}
			}
		default:
			continue
		}
		if sr.err != nil {
			return nil, fmt.Errorf("interrupt: name section: %w", sr.err)
		}
		out = appendU32(append(out, id), uint32(len(nb)))
		out = append(out, nb...)
	}
	if r.err != nil {
		return nil, fmt.Errorf("interrupt: name section: %w", r.err)
	}
	return out, nil
}

// codeSection rewrites every function body.
func (rw *rewriter) codeSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	codes := make([][]byte, 0, min(n, 1<<20))
	infos := make([]funcInfo, 0, min(n, 1<<20))
	for i := range n {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("interrupt: function %d: %w", i, r.err)
		}
		info, err := scan(code)
		if err != nil {
			return nil, fmt.Errorf("interrupt: function %d: %w", i, err)
		}
		codes, infos = append(codes, code), append(infos, info)
	}
	if !r.done() {
		return nil, errors.New("interrupt: trailing bytes in the code section")
	}
	entry := entryChecks(infos, rw.tick)
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	var fn []byte
	for i, code := range codes {
		var err error
		fn, err = rw.function(fn[:0], code, infos[i].body, entry[i])
		if err != nil {
			return nil, fmt.Errorf("interrupt: function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	return out, nil
}

// funcInfo is what the entry checks are decided from.
type funcInfo struct {
	body     int      // where the instructions start (after the locals)
	calls    bool     // the function calls another (call or call_indirect)
	pre      []uint32 // functions it may call before its first top-level loop
	indirect bool     // a call_indirect before its first top-level loop
}

// scan reads one function body. Calls "before the first top-level loop"
// are those textually before the first loop opcode at nesting depth 0:
// structured control flow reaches an instruction after that opcode only
// through the loop's header, so only those calls can run before the
// loop's check does.
func scan(code []byte) (funcInfo, error) {
	r := &reader{b: code}
	groups := r.u32()
	for range groups {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return funcInfo{}, fmt.Errorf("locals: %w", r.err)
	}
	info := funcInfo{body: r.off}
	depth, top := 0, false
	calls, err := walk(code, r.off, func(op byte, r *reader) {
		switch op {
		case 0x02, 0x04: // block, if
			depth++
		case 0x03: // loop
			if depth == 0 {
				top = true
			}
			depth++
		case 0x0b: // end
			depth--
		case 0x10: // call
			f := r.u32()
			if !top {
				info.pre = append(info.pre, f)
			}
		case 0x11: // call_indirect
			if !top {
				info.indirect = true
			}
		case 0xd2: // ref.func
			r.u32()
		}
	})
	info.calls = calls
	return info, err
}

// entryChecks decides which defined functions get a check at their entry:
// enough of them that every call the guest can make without passing a
// check lands on a function that checks at its entry, so every chain of
// calls, recursion included, passes checks at a bounded interval. A
// function needs none when it calls nothing (it returns in bounded time)
// or calls only after its first top-level loop (whose check runs first).
// Nor when all it may call before that loop are imports, functions of
// those two kinds, or functions that keep their entry check (greedily: a
// function whose check is dropped pins the checks of those it calls
// there). Standard Go's functions call
// runtime.morestack in their prologue, before their loop: that check
// stays, and theirs go.
func entryChecks(infos []funcInfo, imported uint32) []bool {
	const (
		undecided = iota
		keep      // keeps its entry check, and must
		drop
	)
	state := make([]byte, len(infos))
	entry := make([]bool, len(infos))
	for i, f := range infos {
		entry[i] = f.calls && len(f.pre) > 0 || f.indirect
	}
	for i, f := range infos {
		if !entry[i] || state[i] == keep || f.indirect {
			continue
		}
		ok := true
		for _, c := range f.pre {
			if c < imported {
				continue // a host function
			}
			d := c - imported
			// A callee without an entry check of its own (it calls nothing,
			// or only after a loop's check) is as good as one with it.
			if int(d) >= len(infos) || d == uint32(i) || state[d] == drop {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, c := range f.pre {
			if c >= imported && entry[c-imported] {
				state[c-imported] = keep
			}
		}
		state[i], entry[i] = drop, false
	}
	return entry
}

// function copies one function body to dst with a check after every loop
// instruction and, when entry is set, at its entry (after the locals, at
// body), and its calls and ref.func renumbered.
func (rw *rewriter) function(dst, code []byte, body int, entry bool) ([]byte, error) {
	dst = append(dst, code[:body]...)
	if entry {
		dst = append(dst, rw.check...)
	}
	start := body
	_, err := walk(code, body, func(op byte, r *reader) {
		switch op {
		case 0x03: // loop: a check at the top of its body
			dst = append(dst, code[start:r.off]...)
			dst = append(dst, rw.check...)
			start = r.off
		case 0x10, 0xd2: // call, ref.func: renumber
			dst = append(dst, code[start:r.off]...)
			dst = appendU32(dst, rw.fn(r.u32()))
			start = r.off
		}
	})
	if err != nil {
		return nil, err
	}
	return append(dst, code[start:]...), nil
}

// walk decodes the instructions of a function body from off. For block,
// loop, if, end, call, call_indirect and ref.func it calls visit (when not
// nil) right after the opcode (and a block type); visit reads a call's or
// ref.func's immediate itself. It reports whether the body calls any
// function.
func walk(code []byte, off int, visit func(op byte, r *reader)) (calls bool, err error) {
	r := &reader{b: code, off: off}
	for !r.done() {
		op := r.byte()
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			r.blockType()
			if visit != nil {
				visit(op, r)
			}
		case op == 0x0b: // end
			if visit != nil {
				visit(op, r)
			}
		case op == 0x10 || op == 0xd2: // call, ref.func
			calls = calls || op == 0x10
			if visit != nil {
				visit(op, r)
			} else {
				r.u32()
			}
		case op <= 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b,
			op >= 0x45 && op <= 0xc4, op == 0xd1:
			// no immediates
		case op == 0x0c || op == 0x0d, op >= 0x20 && op <= 0x26:
			r.u32() // br, br_if, local.*, global.*, table.get/set
		case op == 0x0e: // br_table
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect
			calls = true
			r.u32()
			r.u32()
			if visit != nil {
				visit(op, r)
			}
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
				return false, err
			}
		default:
			return false, fmt.Errorf("opcode %#x at %d not supported", op, r.off-1)
		}
		if r.err != nil {
			return false, fmt.Errorf("at %d: %w", r.off, r.err)
		}
	}
	return calls, nil
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
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
