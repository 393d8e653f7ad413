import { expect } from 'chai';
import type { Api } from '../../widget/src/api';
import type { Host } from '../../widget/src/host';
import { translator } from '../../widget/src/i18n';
import { PanelModel } from '../../widget/src/panelModel';
import type { Conv, Msg } from '../../widget/src/types';

// The panel's model in Node with a recording stand-in for the API: what it sends, where to, and
// that a disposed panel sends nothing.

const conv = (id: number, phone: string, numberId = 1): Conv => ({ id, numberId, numberPhone: '+15550000001', phone, waId: phone.slice(1), name: null, unreadCount: 0, lastMessageAt: null, lastMessage: null });

function fakeApi() {
  const calls: Array<{ method: string; path: string; body: unknown; headers: Record<string, string> }> = [];
  let seq = 100;
  const request = async <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    calls.push({ method, path, body, headers });
    const m = /^\/conversations\/(\d+)\/messages$/.exec(path);
    if (method === 'POST' && m) {
      const isForm = body instanceof FormData;
      const msg: Msg = { id: ++seq, conversationId: Number(m[1]), direction: 'out', type: isForm ? 'voice' : 'text', text: isForm ? null : (body as { text: string }).text, status: 'queued', createdAt: new Date().toISOString() };
      return msg as T;
    }
    if (method === 'POST' && path === '/conversations') return conv(9, (body as { phone: string }).phone, (body as { numberId?: number }).numberId ?? 1) as T;
    return {} as T;
  };
  const api = { base: 'http://x', request, get: (p: string) => request('GET', p), post: (p: string, b: unknown = {}, h?: Record<string, string>) => request('POST', p, b, h), put: (p: string, b: unknown) => request('PUT', p, b) };
  return { api: api as unknown as Api, calls };
}

const host: Host = { lang: 'ru', apiBase: 'http://x', getToken: async () => ({ token: 't', expiresAt: Date.now() + 3600e3 }), entity: null, admin: false };

function model() {
  const { api, calls } = fakeApi();
  const m = new PanelModel(api, host, translator('ru'));
  m.state = { ...m.state, ready: true, convs: [conv(1, '+15550000002'), conv(2, '+15550000003')], activeId: 1, threads: { 1: { items: [], cursor: null, loading: false, loaded: true }, 2: { items: [], cursor: null, loading: false, loaded: true } } };
  return { m, calls };
}
const posts = (calls: ReturnType<typeof fakeApi>['calls']) => calls.filter((c) => c.method === 'POST' && /\/messages$/.test(c.path));
const settle = () => new Promise((r) => setTimeout(r, 10));

describe('widget panel model', () => {
  it('sends to the conversation the message was written in, not the one open when it goes', async () => {
    const { m, calls } = model();
    m.state = { ...m.state, activeId: 2 }; // the manager switched phones meanwhile
    m.sendText(1, 'typed for the first phone');
    m.sendFile(1, new File([new Uint8Array([1, 2, 3])], 'voice.ogg', { type: 'audio/ogg' }), null, true);
    await settle();
    expect(posts(calls).map((c) => c.path)).to.deep.equal(['/conversations/1/messages', '/conversations/1/messages']);
    expect(m.state.threads[1]!.items.map((x) => x.type)).to.deep.equal(['text', 'voice']);
    expect(m.state.threads[2]!.items).to.deep.equal([]);
    m.dispose();
  });

  it('sends nothing once disposed (a recording stopped by the unmount, a late callback)', async () => {
    const { m, calls } = model();
    m.dispose();
    m.sendText(1, 'too late');
    m.sendFile(1, new File([new Uint8Array([1])], 'voice.ogg', { type: 'audio/ogg' }), null, true);
    await settle();
    expect(posts(calls)).to.deep.equal([]);
  });

  it('starts a conversation from the number chosen in the header; asks for the licence in the CRM language', async () => {
    const { m, calls } = model();
    m.state = { ...m.state, activeId: null, numbers: [{ id: 1, phone: '+15550000001', state: 'ready', stateDetail: null, qr: null, lastReadyAt: null }, { id: 4, phone: '+15550000004', state: 'ready', stateDetail: null, qr: null, lastReadyAt: null }] };
    expect(m.writingNumberId()).to.equal(1);
    await m.chooseNumber(4);
    expect(m.writingNumberId()).to.equal(4);
    await m.openPhone('+15550000099');
    expect(calls.find((c) => c.path === '/conversations')!.body).to.deep.equal({ phone: '+15550000099', numberId: 4 });
    await m.refreshLicence();
    expect(calls.some((c) => c.method === 'GET' && c.path === '/licence?lang=ru')).to.equal(true);
    m.dispose();
  });
});
