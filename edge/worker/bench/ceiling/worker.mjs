// The local runtime's ceiling for bench-edge: a plain JavaScript Worker that
// returns a fixed response, with no Go and no I/O.
const body = new TextEncoder().encode('{"ok":true}');

export default {
  async fetch() {
    return new Response(body, { status: 200, headers: { "Content-Type": "application/json" } });
  },
};
