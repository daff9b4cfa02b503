// The gossip simulation (bench/sim.c, `make sim`) at small N: the real v2
// anti-entropy logic converges after a change within 2*log2(N) rounds, and
// its bytes per node per round are a small fraction of a v1 round's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const SIM = path.join(process.env.SM_BUILD ?? 'build', 'bench', 'sim');

test('the simulation converges in 2*log2(N) rounds at N=100 and 300', () => {
  const r = spawnSync(SIM, ['--n', '100', '--n', '300', '--changes', '3', '--json'],
    { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.ok(row.rounds > 0 && row.rounds <= row.bound, JSON.stringify(row));
    // Nothing changed: a root digest per contact, nothing that grows with N.
    assert.ok(row.steady_bpnr < 200, JSON.stringify(row));
    // A change costs what changed, far below pushing every announcement.
    assert.ok(row.change_bpnr < row.v1_bpnr / 10, JSON.stringify(row));
  }
  // Steady cost does not grow with the mesh.
  assert.ok(rows[1].steady_bpnr <= rows[0].steady_bpnr * 1.5, JSON.stringify(rows));
});
