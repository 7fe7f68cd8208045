// Per-stream settings owned by feature modules (rollup levels, retention, HDF5 mapping …), kept
// in strata.streams.settings under the module's key. Each module registers how its setting is
// defaulted, checked and applied; POST and PATCH /v1/streams go through these handlers, in the
// transaction that changes the stream, so a setting and what it implies (e.g. rollup tables)
// change together.
import type { PoolClient } from '../db/pool.ts';
import type { Actor } from '../audit/log.ts';
import type { Stream } from '../domain/types.ts';

export interface SettingHandler<T = unknown> {
  /** Key in the stream definition JSON and in strata.streams.settings. */
  key: string;
  /** The value a stream gets when its definition does not give one (or null for none). */
  defaultValue(): T | null;
  /** Checks and normalises a value from a request; throws a 4xx AppError naming the problem. */
  parse(value: unknown, stream: Pick<Stream, 'name' | 'chunkIntervalUs'>): T | null;
  /** Makes the database match the new value (called in the stream's transaction). */
  apply?(tx: PoolClient, stream: Stream, previous: T | null, next: T | null, actor: Actor): Promise<void>;
  /** The value as GET /v1/streams shows it. */
  show?(value: T | null): unknown;
}

const handlers = new Map<string, SettingHandler>();

export function registerStreamSetting<T>(handler: SettingHandler<T>): void {
  handlers.set(handler.key, handler as SettingHandler);
}

export function settingHandlers(): SettingHandler[] {
  return [...handlers.values()];
}

export function settingHandler(key: string): SettingHandler | undefined {
  return handlers.get(key);
}

/** Called in the transaction that adds columns to a stream, with the stream as it now is. */
export type ColumnsAddedHook = (tx: PoolClient, stream: Stream) => Promise<void>;
const columnsAddedHooks: ColumnsAddedHook[] = [];

export function onColumnsAdded(hook: ColumnsAddedHook): void {
  columnsAddedHooks.push(hook);
}

export function columnsAddedHooksList(): readonly ColumnsAddedHook[] {
  return columnsAddedHooks;
}
