// A standby on another machine: `strata standby` takes its base backup over a replication
// connection (no access to the primary's files), and STRATA_PG_ALLOW opens the embedded
// PostgreSQL to the networks named — and only to them. "Another machine" is this machine's own
// non-loopback address, so every connection goes over the network path a remote one would take.
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { type EmbeddedServer, startEmbedded } from '../../src/db/embedded.ts';
import { waitFor } from '../helpers/clock.ts';
import { SPAWNED_TIMEOUT_MS, removeDir, tempDir } from '../faults/lib.ts';
import { PORTS, cli, query, stopCluster } from './lib.ts';

const address = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

let primaryDir: string;
let standbyDir: string;
let primary: EmbeddedServer | null = null;

beforeAll(async () => {
  primaryDir = await tempDir('strata-remote-primary-');
  standbyDir = path.join(await tempDir('strata-remote-standby-'), 'data');
});

afterAll(async () => {
  await stopCluster(standbyDir);
  await primary?.stop();
  await removeDir(path.dirname(standbyDir));
  await removeDir(primaryDir);
});

const viaNetwork = (url: string): string => url.replace('@127.0.0.1:', `@${address}:`);

describe('STRATA_PG_ALLOW', () => {
  it('takes networks in CIDR form and names itself for anything else', () => {
    expect(loadConfig({}).pgAllow).toEqual([]);
    expect(loadConfig({ STRATA_PG_ALLOW: '10.1.0.0/16, 192.168.1.20/32,fd00::/8' }).pgAllow).toEqual(['10.1.0.0/16', '192.168.1.20/32', 'fd00::/8']);
    for (const bad of ['10.1.0.0', 'lab-net/24', '10.0.0.0/33', 'all', '10.0.0.0/8;host all']) {
      expect(() => loadConfig({ STRATA_PG_ALLOW: bad }), bad).toThrow(/STRATA_PG_ALLOW/);
    }
  });
});

describe.skipIf(address === undefined)('a standby made over the network', () => {
  it('is reachable only from the networks STRATA_PG_ALLOW names, and streams from a primary it reaches by address', async () => {
    // Closed by default: 127.0.0.1 only.
    primary = await startEmbedded({ dataDir: primaryDir, port: PORTS.remote, allow: [] });
    await expect(query(viaNetwork(primary.url), 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await primary.stop();

    // Open to this address: queries and replication over the network.
    primary = await startEmbedded({ dataDir: primaryDir, port: PORTS.remote, allow: [`${address}/32`] });
    expect((await query<{ n: number }>(viaNetwork(primary.url), 'SELECT 1 AS n'))[0].n).toBe(1);
    await query(primary.url, 'CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)');

    const made = await cli(['standby', '--primary', viaNetwork(primary.url), '--data-dir', standbyDir, '--port', String(PORTS.remoteStandby)],
      { STRATA_PG_ALLOW: `${address}/32` });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toMatch(/base backup received: \d+ files/);
    const standbyUrl = (JSON.parse(made.stdout) as { url: string }).url;
    // The standby is open to the same network, for a Strata server elsewhere.
    expect((await query<{ r: boolean }>(viaNetwork(standbyUrl), 'SELECT pg_is_in_recovery() AS r'))[0].r).toBe(true);
    expect((await query<{ n: string }>(standbyUrl, 'SELECT count(*) AS n FROM t'))[0].n).toBe('1000');

    // It streams what the primary writes after the backup, over the network connection.
    await query(primary.url, 'INSERT INTO t SELECT generate_series(1, 500)');
    await waitFor('the standby to stream the new rows', async () =>
      (await query<{ n: string }>(standbyUrl, 'SELECT count(*) AS n FROM t'))[0].n === '1500' || undefined, 30_000);
    const [sender] = await query<{ addr: string }>(primary.url, "SELECT host(client_addr) AS addr FROM pg_stat_replication WHERE application_name = 'strata_standby'");
    expect(sender.addr).toBe(address);

    // Closed again: the Strata block leaves pg_hba.conf, and the address is refused.
    await primary.stop();
    primary = await startEmbedded({ dataDir: primaryDir, port: PORTS.remote, allow: [] });
    await expect(query(viaNetwork(primary.url), 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    const [{ rules }] = await query<{ rules: string }>(primary.url, "SELECT count(*) AS rules FROM pg_hba_file_rules WHERE address = $1", [address]);
    expect(rules).toBe('0');
  }, SPAWNED_TIMEOUT_MS);
});
