// Deterministic mutations of real files for the ingest fuzz suite: bit flips, overwritten bytes
// (random and boundary values), splices, truncations, and — for Arrow — whole IPC messages
// repeated or footer blocks pointed at the wrong message. Every mutant is a pure function of
// (seed file, seed number), so a failure is reproduced from its name alone.

import { rng as prng } from '../helpers/rollups.ts';

export type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** Byte ranges of an Arrow IPC stream's messages (prefix, metadata and body), EOS excluded. */
export function arrowMessages(buf: Buffer, from = 0, to = buf.length): [number, number][] {
  const out: [number, number][] = [];
  let p = from;
  while (p + 8 <= to) {
    let prefix = 4;
    let metaLen = buf.readUInt32LE(p);
    if (metaLen === 0xffffffff) { metaLen = buf.readUInt32LE(p + 4); prefix = 8; }
    if (metaLen === 0) break;
    // bodyLength is the Message table's int64 field; find it through the flatbuffer's vtable.
    const meta = p + prefix;
    const root = meta + buf.readUInt32LE(meta);
    const vtable = root - buf.readInt32LE(root);
    const vtLen = buf.readUInt16LE(vtable);
    const bodyField = vtLen > 10 ? buf.readUInt16LE(vtable + 10) : 0;
    const body = bodyField === 0 ? 0 : Number(buf.readBigInt64LE(root + bodyField));
    const end = meta + metaLen + body;
    if (end > to) break;
    out.push([p, end]);
    p = end;
  }
  return out;
}

/** Where an Arrow file's footer starts (it is followed by its int32 length and ARROW1). */
function footerStart(buf: Buffer): number {
  return buf.length - 10 - buf.readInt32LE(buf.length - 10);
}

export interface Mutant { name: string; bytes: Buffer }

export type Kind = 'arrow-stream' | 'arrow-file' | 'bytes';

const BOUNDARY: readonly number[][] = [
  [0xff], [0x00], [0x80], [0x7f], [0xff, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0x7f], [0x00, 0x00, 0x00, 0x80],
  [0xf0, 0xff, 0xff, 0xff, 0x00], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xc3], [0xed, 0xa0, 0x80],
];

function flipBits(r: Rand, b: Buffer): string {
  const k = 1 + int(r, 6);
  const at: number[] = [];
  for (let i = 0; i < k; i++) {
    const p = int(r, b.length);
    b[p] ^= 1 << int(r, 8);
    at.push(p);
  }
  return `flip${k}@${at[0]}`;
}

function overwrite(r: Rand, b: Buffer): string {
  const p = int(r, b.length);
  if (r() < 0.5) {
    const v = BOUNDARY[int(r, BOUNDARY.length)];
    for (let i = 0; i < v.length && p + i < b.length; i++) b[p + i] = v[i];
    return `boundary${v.length}@${p}`;
  }
  const n = 1 + int(r, 8);
  for (let i = 0; i < n && p + i < b.length; i++) b[p + i] = int(r, 256);
  return `overwrite${n}@${p}`;
}

function splice(r: Rand, b: Buffer, donor: Buffer): string {
  const len = 1 + int(r, Math.min(256, donor.length));
  const from = int(r, donor.length - len + 1);
  const to = int(r, b.length);
  donor.copy(b, to, from, from + len);
  return `splice${len}:${from}->${to}`;
}

/** One mutant of `seed` (a copy; `seed` is never changed). `donor` is another file of the same format. */
export function mutate(kind: Kind, seed: Buffer, donor: Buffer, n: number): Mutant {
  const r = prng(0x5eed + n * 7919);
  const b = Buffer.from(seed);
  const pick = int(r, kind === 'bytes' ? 5 : 7);
  switch (pick) {
    case 0: case 1: return { name: flipBits(r, b), bytes: b };
    case 2: return { name: overwrite(r, b), bytes: b };
    case 3: return { name: splice(r, b, donor), bytes: b };
    case 4: {
      const at = int(r, b.length);
      return { name: `truncate@${at}`, bytes: b.subarray(0, at) };
    }
    case 5: return repeatMessage(r, kind, b);
    default: return kind === 'arrow-file' && r() < 0.6 ? retargetBlock(r, b) : { name: flipBits(r, b), bytes: b };
  }
}

/** Inserts a copy of one IPC message right after itself or after another message. */
function repeatMessage(r: Rand, kind: Kind, b: Buffer): Mutant {
  const from = kind === 'arrow-file' ? 8 : 0;
  const to = kind === 'arrow-file' ? footerStart(b) : b.length;
  const msgs = arrowMessages(b, from, to);
  if (msgs.length === 0) return { name: 'nomessages', bytes: b };
  // The schema message (index 0) is chosen a third of the time: the case that once hung a file.
  const k = r() < 0.33 ? 0 : int(r, msgs.length);
  const after = msgs[Math.min(msgs.length - 1, k + int(r, 2))][1];
  const copy = b.subarray(msgs[k][0], msgs[k][1]);
  return { name: `repeat${k}after${after}`, bytes: Buffer.concat([b.subarray(0, after), copy, b.subarray(after)]) };
}

/** Points one of an Arrow file's footer blocks at another message (e.g. the schema). */
function retargetBlock(r: Rand, b: Buffer): Mutant {
  const footer = footerStart(b);
  const msgs = arrowMessages(b, 8, footer);
  const hits: number[] = [];
  for (const [start] of msgs) {
    for (let p = footer; p + 8 <= b.length - 10; p += 8) if (b.readBigInt64LE(p) === BigInt(start)) hits.push(p);
  }
  if (hits.length === 0 || msgs.length === 0) return { name: flipBits(r, b), bytes: b };
  const at = hits[int(r, hits.length)];
  const target = msgs[int(r, msgs.length)][0];
  b.writeBigInt64LE(BigInt(target), at);
  return { name: `retarget@${at}->${target}`, bytes: b };
}
