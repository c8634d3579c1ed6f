package interrupt_test

import (
	"context"
	"strings"
	"sync/atomic"
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

var cfg = interrupt.Config{Module: "host", Name: "tick", Every: 1000}

// TestInstrumentTicks: an instrumented loop calls the host's tick once
// every Every checks and the tick's panic stops it; renumbered calls and
// exports still reach the right functions.
func TestInstrumentTicks(t *testing.T) {
	ctx := context.Background()
	mod, err := interrupt.Instrument(spinModule, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	var ticks atomic.Int64
	stopAt := int64(50)
	_, err = rt.NewHostModuleBuilder("host").NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(context.Context, []uint64) {
			if ticks.Add(1) >= stopAt {
				panic("stop")
			}
		}), nil, nil).Export("tick").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.Instantiate(ctx, mod)
	if err != nil {
		t.Fatalf("instrumented module does not instantiate: %v", err)
	}
	res, err := m.ExportedFunction("add").Call(ctx, 2, 3)
	if err != nil || res[0] != 5 {
		t.Fatalf("add(2, 3) = %v, %v; want 5", res, err)
	}
	if n := ticks.Load(); n != 0 {
		t.Fatalf("one call to add ticked %d times", n)
	}
	done := make(chan error, 1)
	go func() { _, err := m.ExportedFunction("spin").Call(ctx); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stop") {
			t.Fatalf("spin returned %v, want the tick's panic", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tick did not stop the loop")
	}
	if n := ticks.Load(); n != stopAt {
		t.Errorf("ticks = %d, want %d", n, stopAt)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	if _, err := interrupt.Instrument([]byte("not wasm"), cfg); err == nil {
		t.Error("accepted a non-wasm input")
	}
	if _, err := interrupt.Instrument(spinModule, interrupt.Config{Module: "host", Name: "tick"}); err == nil {
		t.Error("accepted Every 0")
	}
	simd := withBodies(0x00, 0xfd, 0x0c, 0x0b) // a SIMD instruction
	if _, err := interrupt.Instrument(simd, cfg); err == nil {
		t.Error("accepted an instruction it does not know (0xfd)")
	}
	tail := withBodies(0x00, 0x12, 0x01, 0x0b) // return_call
	if _, err := interrupt.Instrument(tail, cfg); err == nil {
		t.Error("accepted a tail call")
	}
}
