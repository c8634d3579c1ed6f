// Benchmark fixture, not a product feature: the smallest honest stand-in for
// a Cloudflare Queue under plain `workerd serve`, which has no Queue
// bindings (scripts/workerd-config.mjs wires it in for bench-edge).
//
// The producer's binding (env.VOTES) is a service binding to this worker, so
// the glue's unchanged `env.VOTES.send(body, { contentType: "bytes" })` is a
// JS RPC call to send() below. Messages wait here, in memory, the way the
// local queue of `wrangler dev` keeps them, and are delivered to the
// consumer worker's own queue() handler (env.CONSUMER.queue(), workerd's
// service-binding queue event) in batches of at most MAX_BATCH_SIZE, at most
// MAX_BATCH_TIMEOUT seconds after the first of them arrived, as the queue
// would. Messages the consumer retries are delivered again up to
// MAX_RETRIES times, then dropped with a log line (no dead-letter queue
// here). Not durable: a restart loses what waits.
import { WorkerEntrypoint } from "cloudflare:workers";

let pending = []; // messages waiting for delivery
let scheduled = false; // a delivery is scheduled for pending
let nextId = 1;

export default class Queue extends WorkerEntrypoint {
  // send is Queue.send(body, options): it resolves once the message is
  // queued (here: held in memory).
  async send(body, options) {
    pending.push({ id: String(nextId++), timestamp: new Date(), body, attempts: 1, contentType: options?.contentType });
    this.schedule();
  }

  // sendBatch is Queue.sendBatch([{ body, contentType }]).
  async sendBatch(messages) {
    for (const m of messages) {
      pending.push({ id: String(nextId++), timestamp: new Date(), body: m.body, attempts: 1, contentType: m.contentType });
    }
    this.schedule();
  }

  async fetch() {
    return new Response("queue stand-in (bench fixture)\n", { status: 404 });
  }

  // schedule delivers pending from the context of the request that queued
  // the first waiting message (waitUntil keeps that context alive).
  schedule() {
    if (scheduled) {
      return;
    }
    scheduled = true;
    const max = Number(this.env.MAX_BATCH_SIZE ?? 100);
    const wait = 1000 * Number(this.env.MAX_BATCH_TIMEOUT ?? 1);
    const deliver = async () => {
      const start = Date.now();
      while (pending.length < max && Date.now() - start < wait) {
        await new Promise((r) => setTimeout(r, Math.min(10, wait)));
      }
      const batch = pending.splice(0, max);
      scheduled = false;
      if (pending.length > 0) {
        this.schedule();
      }
      await this.deliver(batch);
    };
    this.ctx.waitUntil(deliver().catch((e) => console.error("queue stand-in:", String(e))));
  }

  async deliver(batch) {
    const maxRetries = Number(this.env.MAX_RETRIES ?? 3);
    const msgs = batch.map((m) => ({ id: m.id, timestamp: m.timestamp, body: m.body, attempts: m.attempts }));
    let retry = [];
    try {
      const r = await this.env.CONSUMER.queue(this.env.QUEUE_NAME, msgs);
      if (r.outcome !== "ok" || r.retryBatch?.retry) {
        retry = batch;
      } else {
        const ids = new Set(r.retryMessages?.map((m) => m.msgId) ?? []);
        retry = batch.filter((m) => ids.has(m.id));
      }
    } catch (e) {
      console.error("queue stand-in: delivery failed:", String(e));
      retry = batch;
    }
    for (const m of retry) {
      if (m.attempts > maxRetries) {
        console.error("queue stand-in: dropped message " + m.id + " after " + m.attempts + " attempts");
        continue;
      }
      m.attempts++;
      pending.push(m);
    }
    if (retry.length > 0) {
      this.schedule();
    }
  }
}
