// Keeps one item of an async sequence in hand: while the consumer works on the current item, the
// next one is already being produced. Ingest uses it so that the next record batch is received,
// hashed, kept and decoded while the COPY of the current one waits for PostgreSQL to catch up;
// without it, PostgreSQL would sit idle each time a batch is read, once per batch.
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let pending = it.next();
  let finished = false;
  try {
    while (true) {
      const r = await pending;
      if (r.done) {
        finished = true;
        return;
      }
      pending = it.next();
      // A failure of the step read ahead surfaces when it is awaited above, never as unhandled.
      pending.catch(() => undefined);
      yield r.value;
    }
  } finally {
    // The consumer stopped early (or the source failed): close the source once the step in flight
    // has settled, without waiting for it here (it may wait on a client that sends nothing more).
    if (!finished) void pending.then(() => it.return?.(), () => undefined).catch(() => undefined);
  }
}
