// Maintenance work at a lower CPU priority. When PostgreSQL runs on this machine (the embedded
// server, or DATABASE_URL through a Unix socket or the loopback address), the backends that
// serve background jobs get a higher nice value, so that when the CPU is short the kernel gives
// it to the backends storing uploads and answering queries first, and the jobs take what is
// left. A job then runs longer under load, never the other way round; queries stay complete
// meanwhile, since they compute what the rollups have not caught up with from finer data.
//
// Nothing is done for a server elsewhere: its process ids mean nothing here.
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import type pg from 'pg';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** The process id of a connection's backend, if that backend is a PostgreSQL process on this machine. */
export function localBackendPid(client: pg.Client): number | null {
  const pid = (client as unknown as { processID?: number | null }).processID;
  const host = client.host ?? '';
  if (!pid || !(host.startsWith('/') || LOOPBACK.has(host))) return null;
  try {
    // A port forwarded into a container also answers on the loopback address; its backends'
    // ids belong to another process namespace. Only a postgres process with this id will do.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    return cmd.startsWith('postgres') ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Raises the nice value of the connection's backend to `nice` (0 leaves it alone). Returns
 * whether it did; it cannot when the backend is not on this machine or the OS refuses.
 */
export function lowerBackendPriority(client: pg.Client, nice: number): boolean {
  if (nice <= 0) return false;
  const pid = localBackendPid(client);
  if (pid === null) return false;
  try {
    if (os.getPriority(pid) < nice) os.setPriority(pid, nice);
    return true;
  } catch {
    return false;
  }
}

/**
 * Raises the nice value of the calling thread (Linux: a thread has its own; a worker thread doing
 * a job's work calls this). Returns whether it did.
 */
export function lowerThreadPriority(nice: number): boolean {
  if (nice <= 0) return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    if (os.getPriority(tid) < nice) os.setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
