import { expect } from 'chai';
import type { Knex } from 'knex';
import type { RunningServer } from '../../server/main';
import { testDatabases } from '../helpers/databases';
import { waitFor } from '../helpers/server';
import { OffsetClock } from '../licence/world';
import { bitrix24World, connectNumber, postEvent, postInstall, type B24World } from './world';

const DAY = 24 * 3600_000;

/** Every table with a `portal_id` column, read from the database itself (new migrations included). */
async function portalTables(srv: RunningServer): Promise<string[]> {
  const k: Knex = srv.db.knex;
  if (srv.db.dialect === 'pg') {
    const r = await k.raw(`SELECT table_name FROM information_schema.columns WHERE column_name = 'portal_id' AND table_schema = current_schema()`);
    return (r.rows as Array<{ table_name: string }>).map((x) => x.table_name).sort();
  }
  const tables = (await k.raw(`SELECT name FROM sqlite_master WHERE type = 'table'`)) as Array<{ name: string }>;
  const out: string[] = [];
  for (const t of tables) {
    const cols = (await k.raw(`PRAGMA table_info("${t.name}")`)) as Array<{ name: string }>;
    if (cols.some((c) => c.name === 'portal_id')) out.push(t.name);
  }
  return out.sort();
}

/**
 * The portal's rows, per table that has any (the `portals` row under "portals"). Not `audit_log`:
 * it is append-only by design and keeps the portal's history (ending with its erasure).
 */
async function rowsOf(srv: RunningServer, portalId: number, opts: { jobs?: boolean } = {}): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const count = async (table: string, where: Record<string, number>) => Number(((await srv.db.knex(table).where(where).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
  const p = await count('portals', { id: portalId });
  if (p) out.portals = p;
  for (const t of await portalTables(srv)) {
    if (t === 'audit_log' || (t === 'jobs' && opts.jobs === false)) continue;
    const n = await count(t, { portal_id: portalId });
    if (n) out[t] = n;
  }
  return out;
}

for (const database of testDatabases()) {
  describe(`Bitrix24 on ${database.name}: the portal's data is erased 30 days after uninstall, at once with CLEAN`, function () {
    this.timeout(60_000);
    let w: B24World;
    const clock = new OffsetClock();
    before(async () => {
      const url = await database.create();
      w = await bitrix24World({ env: url ? { DATABASE_URL: url } : {}, start: { clock } });
    });
    after(async () => {
      await w?.close();
      await database.dropAll();
    });

    /** A portal with a number, a conversation, a message mirrored into Bitrix24 and users seen. */
    async function portalWithHistory(x: B24World, phone: string) {
      const num = await connectNumber(x, phone);
      await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557779001', name: 'Eva', text: `history of ${phone}` });
      await waitFor(() => x.portal.comments.filter((c) => c.COMMENT.includes(`history of ${phone}`)).length === 2, 10_000, 'mirrored');
      const rows = await rowsOf(x.srv, x.portalId);
      for (const t of ['portals', 'bitrix24_portals', 'bitrix24_phone_links', 'bitrix24_comments', 'numbers', 'contacts', 'conversations', 'messages', 'crm_users', 'licences', 'jobs']) {
        expect(rows[t], t).to.be.greaterThan(0);
      }
      return num;
    }

    // First: the other test moves the clock 30 days on (past the licence trial).
    it('with CLEAN=1 erases every row of the portal at once', async () => {
      const p = w.fake.addPortal('cleanall');
      expect((await postInstall(w.srv, w.fake.installation(p))).status).to.equal(200);
      const row = await waitFor(() => w.srv.db.knex('bitrix24_portals').where({ member_id: p.memberId }).first(), 5000, 'installed');
      const x: B24World = { ...w, portal: p, portalId: Number(row.portal_id) };
      await portalWithHistory(x, '+15550002000');
      expect((await postEvent(w.srv, w.fake.uninstallEvent(p, { clean: true }))).status).to.equal(200);
      await waitFor(async () => Object.keys(await rowsOf(w.srv, x.portalId)).length === 0, 10_000, 'every row of the portal erased');
    });

    it('keeps everything until day 30 (an early run waits for the date without using attempts), then erases every row of the portal', async () => {
      await portalWithHistory(w, '+15550001000');
      expect((await postEvent(w.srv, w.fake.uninstallEvent(w.portal))).status).to.equal(200);
      const uninstalled = await waitFor(async () => {
        const r = await w.srv.db.knex('bitrix24_portals').where({ portal_id: w.portalId }).first();
        return r?.state === 'uninstalled' ? r : null;
      }, 5000, 'uninstalled');
      const deleteAfter = Number(uninstalled.delete_after);
      expect(deleteAfter - clock.now()).to.be.within(30 * DAY - 60_000, 30 * DAY);
      const purge = () => w.srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: w.portalId }).first();
      await waitFor(purge, 5000, 'purge job');
      // Jobs come and go meanwhile (licence rules, the daily Market check): the data is what must stay.
      const kept = await rowsOf(w.srv, w.portalId, { jobs: false });

      // Run early (as after a second uninstall moved the date): deferred to the date itself.
      await w.srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: w.portalId }).update({ run_at: clock.now() });
      const deferred = await waitFor(async () => {
        const j = await purge();
        return j?.last_error === 'not due yet' && j.state === 'pending' ? j : null;
      }, 5000, 'early run deferred');
      expect(Number(deferred.run_at)).to.equal(deleteAfter);
      expect(Number(deferred.attempts)).to.equal(0);

      clock.days(29);
      await new Promise((r) => setTimeout(r, 300));
      expect((await purge())?.state).to.equal('pending');
      expect(await rowsOf(w.srv, w.portalId, { jobs: false })).to.deep.equal(kept);

      clock.days(1);
      clock.advance(60_000);
      await waitFor(async () => Object.keys(await rowsOf(w.srv, w.portalId)).length === 0, 10_000, 'every row of the portal erased');
      expect(await w.srv.db.knex('bitrix24_portals').where({ member_id: w.portal.memberId }).first()).to.equal(undefined);
      // The audit log keeps the portal's history, the erasure last.
      const last = await w.srv.db.knex('audit_log').where({ portal_id: w.portalId }).orderBy('id', 'desc').first();
      expect(last.action).to.equal('bitrix24.purged');
      expect(JSON.parse(last.details)).to.include({ memberId: w.portal.memberId });
    });
  });
}
