// Body compression codecs for Arrow IPC. Registered once, process-wide. lz4-napi checks LZ4
// frame checksums (lz4js mis-skips them and yields wrong values); fzstd is a pure-JS zstd
// decoder that handles frames with and without a content size.
import { CompressionType, compressionRegistry } from 'apache-arrow';
import { decompressFrameSync } from 'lz4-napi';
import { decompress as zstdDecompress } from 'fzstd';

let registered = false;

export function registerArrowCodecs(): void {
  if (registered) return;
  registered = true;
  compressionRegistry.set(CompressionType.LZ4_FRAME, {
    decode: (data: Uint8Array) => {
      const out = decompressFrameSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    },
  });
  compressionRegistry.set(CompressionType.ZSTD, { decode: (data: Uint8Array) => zstdDecompress(data) });
}
