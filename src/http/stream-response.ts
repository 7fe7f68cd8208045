// Streams an async sequence of byte chunks as a response body, pulling the next chunk only when
// the client has taken the last one; a client that goes away cancels the producer.
export function streamBody(chunks: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        while (true) {
          const { done, value } = await chunks.next();
          if (done) { controller.close(); return; }
          if (value.byteLength > 0) { controller.enqueue(value); return; }
        }
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  }, { highWaterMark: 1 });
}
