//go:build js && wasm

package worker

// ioKind names an I/O operation the Go program asks of the glue. The values
// are shared with glue/worker.mjs.
type ioKind uint32

const (
	// ioSend sends the payload as one bytes message on the VOTES queue.
	ioSend ioKind = 1
	// ioFetch makes the outbound fetch in the payload's I/O request frame
	// and answers with the whole response as a response frame.
	ioFetch ioKind = 2
	// ioCacheMatch looks the payload (a URL) up in the location's Cache API
	// and answers with a response frame, status 404 when nothing matched.
	ioCacheMatch ioKind = 3
	// ioCachePut stores the payload's I/O request frame (method PUT, the
	// key as URL, headers and body) in the Cache API under the event's
	// waitUntil; it answers at once, before the put completes.
	ioCachePut ioKind = 4
	// ioLimit asks the Rate Limiting binding about the payload (a key) and
	// answers with a response frame: 200 allowed, 429 limited.
	ioLimit ioKind = 5
)

// String names the operation in errors.
func (k ioKind) String() string {
	switch k {
	case ioSend:
		return "queue send"
	case ioFetch:
		return "origin fetch"
	case ioCacheMatch:
		return "cache read"
	case ioCachePut:
		return "cache write"
	case ioLimit:
		return "rate limiter"
	}
	return "worker I/O"
}
