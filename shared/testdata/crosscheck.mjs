// Cross-checks edgepoll's wire format with @msgpack/msgpack, an independent
// MessagePack implementation.
//   node crosscheck.mjs decode <file>  → prints the batch as JSON (hex for binaries)
//   node crosscheck.mjs encode <file>  → writes a v1 batch built here to <file>
import { decode, encode } from "@msgpack/msgpack";
import { readFileSync, writeFileSync } from "node:fs";

const hex = (u8) => Buffer.from(u8).toString("hex");
const [mode, file] = process.argv.slice(2);

if (mode === "decode") {
  const v = decode(readFileSync(file));
  if (!Array.isArray(v) || v.length !== 4 || v[0] !== 1) throw new Error("not a v1 batch");
  const [, id, edge, votes] = v;
  console.log(JSON.stringify({
    id: hex(id), edge,
    votes: votes.map(([poll, voter, choices, at]) => ({ poll, voter: hex(voter), choices: Array.from(choices), at })),
  }));
} else if (mode === "encode") {
  const u8 = (h) => Uint8Array.from(Buffer.from(h, "hex"));
  const votes = [];
  for (let i = 0; i < 300; i++) {
    const voter = (i + 1).toString(16).padStart(32, "0");
    votes.push([i % 2 ? "js-poll" : "other_poll", u8(voter), Uint8Array.from(i % 7 ? [i % 4] : [0, 2, 5]), 1700000000000 + i]);
  }
  writeFileSync(file, encode([1, u8("00112233445566778899aabbccddeeff"), "node-edge", votes]));
} else {
  throw new Error("usage: crosscheck.mjs decode|encode <file>");
}
