//go:build js && wasm

package worker

import (
	"errors"
	"syscall/js"
)

var (
	uint8Array  = js.Global().Get("Uint8Array")
	arrayBuffer = js.Global().Get("ArrayBuffer")
	objectClass = js.Global().Get("Object")
)

// await blocks the calling goroutine until p settles. The continuation runs
// in whichever event resumes Go; callers only await I/O their own request
// started.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		then.Release()
		catch.Release()
		ch <- result{v: arg0(args)}
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		then.Release()
		catch.Release()
		ch <- result{err: jsError(arg0(args))}
		return nil
	})
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.err
}

func arg0(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// jsError turns a thrown JS value into a Go error.
func jsError(v js.Value) error {
	if v.Type() == js.TypeObject {
		if msg := v.Get("message"); msg.Type() == js.TypeString {
			return errors.New(msg.String())
		}
	}
	return errors.New(v.Call("toString").String())
}

// bytesFrom copies a Uint8Array or ArrayBuffer into Go memory.
func bytesFrom(v js.Value) ([]byte, bool) {
	if v.Type() != js.TypeObject {
		return nil, false
	}
	if v.InstanceOf(arrayBuffer) {
		v = uint8Array.New(v)
	} else if !v.InstanceOf(uint8Array) {
		return nil, false
	}
	b := make([]byte, v.Get("byteLength").Int())
	js.CopyBytesToGo(b, v)
	return b, true
}

// toUint8Array copies b into a new Uint8Array.
func toUint8Array(b []byte) js.Value {
	u := uint8Array.New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}
