// Package worker hosts the edge handler in a Cloudflare Worker: it implements
// edge.Host with Worker bindings (Cache API, Queues producer, the Rate
// Limiting binding, outbound fetch bound to globalThis) and runs the queue
// consumer that signs batches and posts them to the origin.
//
// The Worker-only code is built with `js && wasm`; the glue in glue/ keeps ONE
// Go instance per isolate and dispatches every fetch and queue event into it.
// A request crosses as one packed frame each way (wire.go), entering Go
// through a plain WebAssembly export. Each event keeps its env and
// ExecutionContext in the glue, under an id that travels in the request's
// context.Context, so concurrent requests never share per-request handles.
// Go does no Worker I/O itself: it asks the glue (ioKind) and the owning
// event performs the whole operation (an origin fetch with its body, a Cache
// API read or write, a queue send, the rate limiter) from its own JS
// context, handing back plain bytes, so no I/O object is ever touched from
// another request's context. The platform-independent parts (the frames, the coalescing response
// memo, Cache-Control parsing, merging queued batches and the consumer's
// retry policy) build everywhere and are unit tested natively.
package worker

// Binding and variable names the Worker reads (see wrangler.toml).
const (
	// BindingVotes is the Queues producer binding that receives vote batches.
	BindingVotes = "VOTES"
	// BindingRateLimiter is the optional Rate Limiting binding.
	BindingRateLimiter = "RATE_LIMITER"
	// VarOriginURL is the origin's base URL, e.g. https://origin.example.com.
	VarOriginURL = "ORIGIN_URL"
	// VarIngestKey is the batch signing key, "kid=secret" (a secret).
	VarIngestKey = "INGEST_KEY"
	// VarQueueMaxRetries is the votes queue's max_retries (default 10).
	VarQueueMaxRetries = "QUEUE_MAX_RETRIES"
	// VarLogLevel is the lowest level logged: debug, info (default), warn
	// or error.
	VarLogLevel = "LOG_LEVEL"
	// BindingAnalytics is the optional Workers Analytics Engine binding:
	// one data point per request (see docs/METRICS.md).
	BindingAnalytics = "EDGEPOLL_ANALYTICS"
	// HeaderCache reports how a cached read was served: hit, stale or miss.
	HeaderCache = "X-Edgepoll-Cache"
)
