package interrupt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgepoll/edgepoll/wasm/internal/interrupt"
)

// module assembles a wasm binary from (id, body) sections.
func module(secs ...[]byte) []byte {
	b := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	for _, s := range secs {
		b = append(b, s[0], byte(len(s)-1))
		b = append(b, s[1:]...)
	}
	return b
}

// withBodies is (module (func (export "spin") ...) (func (export "add")
// (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)) with the
// given body for spin.
func withBodies(spin ...byte) []byte {
	add := []byte{0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b}
	code := []byte{0x0a, 0x02, byte(len(spin))}
	code = append(append(code, spin...), byte(len(add)))
	code = append(code, add...)
	return module(
		[]byte{0x01, 0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f},
		[]byte{0x03, 0x02, 0x00, 0x01},
		[]byte{0x07, 0x02, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, 0x03, 'a', 'd', 'd', 0x00, 0x01},
		code,
	)
}

// spinModule's spin is (loop (br 0)).
var spinModule = withBodies(0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)

func TestInstrumentStopsALoop(t *testing.T) {
	ctx := context.Background()
	mod, err := interrupt.Instrument(spinModule, "flag")
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	m, err := rt.Instantiate(ctx, mod)
	if err != nil {
		t.Fatalf("instrumented module does not instantiate: %v", err)
	}
	flag, ok := m.ExportedGlobal("flag").(api.MutableGlobal)
	if !ok {
		t.Fatal("no mutable global exported as flag")
	}
	res, err := m.ExportedFunction("add").Call(ctx, 2, 3)
	if err != nil || res[0] != 5 {
		t.Fatalf("add(2, 3) = %v, %v; want 5", res, err)
	}
	time.AfterFunc(50*time.Millisecond, func() { flag.Set(1) })
	done := make(chan error, 1)
	go func() { _, err := m.ExportedFunction("spin").Call(ctx); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("spin returned %v, want an unreachable trap", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("setting the flag did not stop the loop")
	}
}

func TestInstrumentRefuses(t *testing.T) {
	if _, err := interrupt.Instrument([]byte("not wasm"), "flag"); err == nil {
		t.Error("accepted a non-wasm input")
	}
	if _, err := interrupt.Instrument(spinModule, "spin"); err == nil || !strings.Contains(err.Error(), "already exports") {
		t.Errorf("export name clash: %v", err)
	}
	simd := withBodies(0x00, 0xfd, 0x0c, 0x0b) // a SIMD instruction
	if _, err := interrupt.Instrument(simd, "flag"); err == nil {
		t.Error("accepted an instruction it does not know (0xfd)")
	}
}
