import { expect } from 'chai';
import { testDatabases } from '../helpers/databases';
import { outageBurst, waitFor } from '../helpers/server';
import { bitrix24World, connectNumber, type B24World } from './world';

for (const database of testDatabases()) {
  describe(`Bitrix24 on ${database.name}: down for five (simulated) minutes during 300 messages`, function () {
    this.timeout(180_000);
    let w: B24World;
    after(async () => {
      await w?.close();
      await database.dropAll();
    });

    it('puts every message in the timeline exactly once afterwards, never going over 2 requests/s (burst 50)', async () => {
      const url = await database.create();
      // Bitrix24's real limits on both sides; 5 simulated minutes pass in 2 s; short pauses.
      w = await bitrix24World({ env: { ...(url ? { DATABASE_URL: url } : {}), BITRIX24_RPS: '2', BITRIX24_BURST: '50', BITRIX24_BACKOFF_MS: '100' }, fake: { timeScale: 150, rps: 2, burst: 50 }, start: { jobs: { backoffBaseMs: 50, backoffMaxMs: 1000 } } });
      const num = await connectNumber(w, '+15550002000');
      await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', responsibleUserId: '7' }) });
      // Ten clients known to Bitrix24 already (with open deals), twenty new ones.
      for (let p = 0; p < 10; p++) {
        const c = w.fake.addContact(w.portal, { name: `Known ${p}`, phones: [`+1555888${String(p).padStart(4, '0')}`] });
        w.fake.addDeal(w.portal, { title: `Deal ${p}`, contactIds: [c.ID] });
      }
      const started = Date.now();
      w.fake.down(5 * 60_000);
      const sent = await outageBurst(w.srv.url, num.phone);
      expect(w.fake.isDown, 'all 300 arrived while Bitrix24 was down').to.equal(true);
      await waitFor(() => !w.fake.isDown, 10_000, 'outage over');
      await waitFor(() => w.portal.comments.filter((c) => c.COMMENT.includes('outage msg')).length >= 600, 150_000, '600 comments');
      // Due work only: the daily Market billing check stays scheduled for tomorrow.
      const due = () => w.srv.db.knex('jobs').whereIn('state', ['pending', 'running']).andWhere('run_at', '<=', Date.now() + 60_000).count({ n: '*' });
      await waitFor(async () => Number((await due())[0]!.n) === 0, 60_000, 'queue empty');
      const took = Date.now() - started;
      await new Promise((r) => setTimeout(r, 500)); // anything doubled would show up now
      // Both kinds were met: 5xx first, then QUERY_LIMIT_EXCEEDED (the queue paused instead of hammering).
      expect(w.fake.stats.outageLimitAnswers).to.be.greaterThan(0);
      expect(w.fake.stats.outageAnswers - w.fake.stats.outageLimitAnswers).to.be.greaterThan(0);
      for (const text of sent) {
        const cs = w.portal.comments.filter((c) => c.COMMENT.split('\n')[1] === text);
        expect(cs.map((c) => c.ENTITY_TYPE).sort(), text).to.deep.equal(['contact', 'deal']);
      }
      const created = [...w.portal.contacts.values()].filter((c) => String(c.NAME).startsWith('Client '));
      expect(created).to.have.length(20);
      expect(new Set(created.map((c) => c.NAME)).size).to.equal(20);
      expect([...w.portal.deals.values()].filter((d) => String(d.TITLE).startsWith('WhatsApp: Client '))).to.have.length(20);
      const dead = await w.srv.db.knex('jobs').where({ state: 'dead' }).count({ n: '*' });
      expect(Number(dead[0]!.n)).to.equal(0);
      // Never over the portal's bucket, before, during or after the outage.
      expect(w.fake.stats.rateLimited).to.equal(0);
      expect(w.fake.stats.maxLevel).to.be.at.most(50);
      const peak = w.fake.peakPerSecond(w.portal.memberId);
      process.stdout.write(
        `      figures: ${w.fake.stats.requests} requests (${w.fake.stats.batches} batches) for 600 comments + alerts in ${(took / 1000).toFixed(1)} s; ` +
          `peak ${peak} req in one whole second, fullest bucket ${w.fake.stats.maxLevel.toFixed(1)}/50 (drain 2/s); ${w.fake.stats.outageAnswers} outage answers (${w.fake.stats.outageLimitAnswers} QUERY_LIMIT_EXCEEDED); 0 over the limit\n`,
      );
    });
  });
}
