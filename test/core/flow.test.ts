import { expect } from 'chai';
import type { RunningServer } from '../../server/main';
import { client, portalWithNumber, startTestServer, waitFor } from '../helpers/server';

describe('core flow with the simulator', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  it('connects by QR, receives, replies, and ticks go sent → delivered → read', async () => {
    const p = await portalWithNumber(srv);
    await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: '+15550000002', name: 'Ann', text: 'hi' });
    const conv = await waitFor(async () => (await p.user.get('/conversations?phone=%2B15550000002')).body.items[0], 3000, 'conversation');
    expect(conv.name).to.equal('Ann');
    expect(conv.unreadCount).to.equal(1);
    const sent = await p.user.post(`/conversations/${conv.id}/messages`, { text: 'hello' }, { 'Idempotency-Key': 'k-1' });
    expect(sent.status).to.equal(201);
    expect(sent.body.status).to.equal('queued');
    await waitFor(async () => (await p.anon.get('/simulator/delivered?phone=%2B15550000002')).body.items.length === 1, 3000, 'delivery');
    await p.anon.post('/simulator/phones/%2B15550000002/read', {});
    const page = await waitFor(async () => {
      const r = await p.user.get(`/conversations/${conv.id}/messages`);
      return r.body.items.find((m: { id: number; status: string }) => m.id === sent.body.id && m.status === 'read') ? r.body : null;
    }, 3000, 'read status');
    expect(page.items.map((m: { direction: string }) => m.direction)).to.deep.equal(['in', 'out']);
    const anonApi = client(srv.url + '/api/v1');
    expect((await anonApi.get('/numbers')).status).to.equal(401);
  });
});
