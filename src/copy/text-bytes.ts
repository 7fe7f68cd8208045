// Text values' bytes as the encoders copy them out of the decoded columns into COPY buffers.

/** Copies bytes without allocating a view per value (most tags are a few bytes long). */
export function copyBytes(dst: Buffer, at: number, src: Uint8Array, from: number, len: number): void {
  if (len <= 32) {
    for (let k = 0; k < len; k++) dst[at + k] = src[from + k];
  } else {
    dst.set(src.subarray(from, from + len), at);
  }
}

/** Int32 view of Utf8View's 16-byte views (length at word 0, buffer index at 2, offset at 3). */
export function viewWords(views: Uint8Array): Int32Array {
  if (views.byteOffset % 4 === 0) return new Int32Array(views.buffer, views.byteOffset, views.byteLength >> 2);
  return new Int32Array(views.slice().buffer);
}
