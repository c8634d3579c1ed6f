// Cross-checks edgepoll's wire format with @msgpack/msgpack, an independent
// MessagePack implementation.
//   node crosscheck.mjs decode <file>  → prints the batch as JSON (hex for binaries)
//   node crosscheck.mjs encode <file>  → writes a v2 batch built here to <file>
//   node crosscheck.mjs encode-v1 <file> → the same votes (but the words ones) as a v1 batch
import { decode, encode } from "@msgpack/msgpack";
import { readFileSync, writeFileSync } from "node:fs";

const hex = (u8) => Buffer.from(u8).toString("hex");
const [mode, file] = process.argv.slice(2);

if (mode === "decode") {
  const v = decode(readFileSync(file));
  if (!Array.isArray(v) || v.length !== 4 || v[0] !== 2) throw new Error("not a v2 batch");
  const [, id, edge, votes] = v;
  console.log(JSON.stringify({
    id: hex(id), edge,
    votes: votes.map((vote) => {
      if (vote.length !== 5) throw new Error("a v2 vote has 5 elements");
      const [poll, voter, choices, at, words] = vote;
      return { poll, voter: hex(voter), choices: Array.from(choices), at, words };
    }),
  }));
} else if (mode === "encode" || mode === "encode-v1") {
  const v1 = mode === "encode-v1";
  const u8 = (h) => Uint8Array.from(Buffer.from(h, "hex"));
  const votes = [];
  for (let i = 0; i < 300; i++) {
    const voter = (i + 1).toString(16).padStart(32, "0");
    const vote = [i % 2 ? "js-poll" : "other_poll", u8(voter), Uint8Array.from(i % 7 ? [i % 4] : [0, 2, 5]), 1700000000000 + i];
    if (!v1) {
      // every 11th vote is a words vote: no choices, one or two words
      if (i % 11 === 0) {
        vote[0] = "words-poll";
        vote[2] = new Uint8Array(0);
        vote.push(i % 2 ? ["café", "naïve"] : ["amazing"]);
      } else {
        vote.push([]);
      }
    }
    votes.push(vote);
  }
  writeFileSync(file, encode([v1 ? 1 : 2, u8("00112233445566778899aabbccddeeff"), "node-edge", votes]));
} else {
  throw new Error("usage: crosscheck.mjs decode|encode|encode-v1 <file>");
}
