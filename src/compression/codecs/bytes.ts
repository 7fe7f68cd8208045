// Byte buffers for the codecs: a growable writer and a bounds-checked reader. Segments are read
// back from the database only, but a reader never trusts a length it reads: a corrupt segment is
// an error naming the offset, never an out-of-bounds read.

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  /** An unsigned integer below 2^53, 7 bits a byte. */
  varint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /**
   * Makes n zero bytes at the end, written in place through `target` (valid until the next
   * write): their offset in it.
   */
  extend(n: number): number {
    this.room(n);
    const at = this.length;
    this.buf.fill(0, at, at + n);
    this.length += n;
    return at;
  }

  /** The buffer written so far and its room (extend's bytes are written here). */
  get target(): Uint8Array {
    return this.buf;
  }

  /** A length-prefixed block. */
  block(b: Uint8Array): void {
    this.varint(b.length);
    this.bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class CorruptSegment extends Error {
  constructor(message: string) {
    super(`cannot decode a compressed segment: ${message}`);
    this.name = 'CorruptSegment';
  }
}

export class ByteReader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new CorruptSegment(`${n} bytes needed at offset ${this.pos} of ${this.buf.length}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new CorruptSegment(`varint too long at offset ${this.pos}`);
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  block(): Uint8Array {
    return this.bytes(this.varint());
  }
}
