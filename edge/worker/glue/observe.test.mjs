// node --test edge/worker/glue/observe.test.mjs: the data points and log
// lines observe makes, with a recording Analytics Engine binding.
import test from "node:test";
import assert from "node:assert/strict";
import { describe, observe } from "./observe.mjs";

const enc = new TextEncoder();
const errBody = (code) => enc.encode(JSON.stringify({ error: { code, message: "m" } }));
const req = (method = "POST") => ({ method, cf: { colo: "AMS" } });

test("describe labels routes, polls and error codes", () => {
  assert.deepEqual(describe("/v1/polls/final/votes", 409, errBody("conflict")), { route: "vote", poll: "final", code: "conflict" });
  assert.deepEqual(describe("/v1/polls/final", 200, null), { route: "poll", poll: "final", code: "" });
  assert.deepEqual(describe("/v1/polls/final/vote", 200, null), { route: "check", poll: "final", code: "" });
  assert.deepEqual(describe("/v1/polls/f/token", 429, errBody("rate_limited")), { route: "token", poll: "f", code: "rate_limited" });
  assert.deepEqual(describe("/p/final/screen", 200, null), { route: "page", poll: "final", code: "" });
  assert.deepEqual(describe("/nope", 404, enc.encode("not json")), { route: "other", poll: "", code: "" });
  assert.deepEqual(describe("/v1/polls/final/votes", 400, enc.encode('{"error":null}')), { route: "vote", poll: "final", code: "" });
});

test("one data point per request with the binding", () => {
  const points = [];
  const env = { EDGE_ID: "cf-test", EDGEPOLL_ANALYTICS: { writeDataPoint: (p) => points.push(p) } };
  observe(env, req(), "/v1/polls/final/votes", 202, enc.encode('{"status":"accepted"}'), 3);
  observe(env, req(), "/v1/polls/final/votes", 400, errBody("invalid"), 1);
  assert.equal(points.length, 2);
  assert.deepEqual(points[0], { indexes: ["final"], blobs: ["vote", "202", "", "AMS", "cf-test", "POST"], doubles: [1, 202, 3] });
  assert.deepEqual(points[1].blobs.slice(0, 3), ["vote", "400", "invalid"]);
});

test("a failing binding never fails the request", () => {
  const env = { EDGEPOLL_ANALYTICS: { writeDataPoint: () => { throw new Error("quota"); } } };
  assert.doesNotThrow(() => observe(env, req(), "/v1/polls/final/votes", 202, null, 0));
});

test("5xx are logged as JSON, 2xx only with LOG_REQUESTS=all", (t) => {
  const errs = t.mock.method(console, "error", () => {});
  const logs = t.mock.method(console, "log", () => {});
  observe({}, req(), "/v1/polls/final/votes", 202, null, 0);
  assert.equal(errs.mock.callCount() + logs.mock.callCount(), 0);
  observe({ EDGE_ID: "cf-ams" }, req(), "/v1/polls/final/votes", 503, errBody("unavailable"), 7);
  assert.equal(errs.mock.callCount(), 1);
  const line = JSON.parse(errs.mock.calls[0].arguments[0]);
  assert.deepEqual(
    { ...line },
    { level: "ERROR", msg: "request failed", service: "edgepoll-edge", edge: "cf-ams", route: "vote", poll: "final", status: 503, code: "unavailable", method: "POST", colo: "AMS", ms: 7, analytics: false },
  );
  observe({ LOG_REQUESTS: "all" }, req("GET"), "/v1/polls/final/results", 200, null, 0);
  assert.equal(logs.mock.callCount(), 1);
  assert.equal(JSON.parse(logs.mock.calls[0].arguments[0]).route, "results");
});
