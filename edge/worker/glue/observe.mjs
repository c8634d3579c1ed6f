// Request observability for the Worker glue: one Workers Analytics Engine
// data point per request when the EDGEPOLL_ANALYTICS binding exists, and a
// JSON log line (the field names the Go side logs with) for every 5xx, or
// for every request with LOG_REQUESTS=all. Without the binding and with the
// default LOG_REQUESTS, a 2xx-4xx request costs one comparison here.
// The data point layout is documented in docs/METRICS.md.

export const analyticsBinding = "EDGEPOLL_ANALYTICS"; // edge/worker.BindingAnalytics

const apiPath = /^\/v1\/polls\/([A-Za-z0-9_-]{1,64})(?:\/(votes|results|vote|token|stream))?$/;
const routeNames = { votes: "vote", results: "results", vote: "check", token: "token", stream: "stream" };
const pagePath = /^\/p\/([A-Za-z0-9_-]{1,64})(\/screen)?\/?$/;
const decoder = new TextDecoder();

// describe labels a request: its route (poll, vote, results, check, token,
// stream, page, other), its poll id ("" when none) and, for an error
// answer, the error code of its JSON body.
export function describe(path, status, body) {
  let route = "other";
  let poll = "";
  let m = apiPath.exec(path);
  if (m !== null) {
    route = m[2] === undefined ? "poll" : routeNames[m[2]];
    poll = m[1];
  } else if ((m = pagePath.exec(path)) !== null) {
    route = "page";
    poll = m[1];
  }
  let code = "";
  if (status >= 400 && body instanceof Uint8Array && body.length > 0 && body.length <= 4096) {
    try {
      const e = JSON.parse(decoder.decode(body)).error;
      if (e !== null && typeof e === "object" && typeof e.code === "string") {
        code = e.code;
      }
    } catch {
      // not an edgepoll error body: no code
    }
  }
  return { route, poll, code };
}

// observe records one answered request. ms is the wall time the request
// took (in Workers it advances only across I/O). It never throws.
export function observe(env, req, path, status, body, ms) {
  const ae = env[analyticsBinding];
  const all = env.LOG_REQUESTS === "all";
  if (ae === undefined && status < 500 && !all) {
    return;
  }
  const d = describe(path, status, body);
  const colo = (req.cf && req.cf.colo) || "";
  const edge = env.EDGE_ID || "cf";
  if (ae !== undefined) {
    try {
      ae.writeDataPoint({
        indexes: [d.poll],
        blobs: [d.route, String(status), d.code, colo, edge, req.method],
        doubles: [1, status, ms],
      });
    } catch (e) {
      console.error(JSON.stringify({ level: "WARN", msg: "analytics data point not written", service: "edgepoll-edge", edge, err: String(e) }));
    }
  }
  if (status >= 500 || all) {
    const line = JSON.stringify({
      level: status >= 500 ? "ERROR" : "INFO",
      msg: status >= 500 ? "request failed" : "request",
      service: "edgepoll-edge",
      edge,
      route: d.route,
      poll: d.poll,
      status,
      code: d.code,
      method: req.method,
      colo,
      ms,
      analytics: ae !== undefined,
    });
    if (status >= 500) {
      console.error(line);
    } else {
      console.log(line);
    }
  }
}
