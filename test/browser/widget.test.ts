import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { client, portalWithNumber, startTestServer, waitFor } from '../helpers/server';
import { ensureWidgetBuilt } from '../helpers/widget';

// A smoke of the real standalone bundle on /demo/widget against the simulator: the panel opens
// the card's conversation, sends with ticks moving, receives live; the settings tab connects a
// number by QR. The full cross-host suite (Kommo, Bitrix24 emulators) lives in the hosts' tests.
describe('widget (standalone bundle) in Chromium', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let browser: Browser;
  const CLIENT = '+15550000002';

  before(async function () {
    if (!chromiumPath()) this.skip();
    await ensureWidgetBuilt();
    srv = await startTestServer();
    browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  async function open(hash: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(`${srv.url}/demo/widget#${hash}`);
    return page;
  }

  it('serves the bundles with an ETag, immutable under their hash, 404 otherwise', async () => {
    const url = srv.widgetAssets.url('kommo.js');
    expect(url).to.match(/^\/widget\/kommo\.js\?v=[0-9a-f]{16}$/);
    const r = await fetch(srv.url + url);
    expect(r.status).to.equal(200);
    expect(r.headers.get('cache-control')).to.contain('immutable');
    expect(r.headers.get('content-type')).to.contain('javascript');
    const etag = r.headers.get('etag')!;
    expect((await fetch(`${srv.url}/widget/kommo.js`, { headers: { 'If-None-Match': etag } })).status).to.equal(304);
    expect((await fetch(`${srv.url}/widget/kommo.js`)).headers.get('cache-control')).to.equal('no-cache');
    expect((await fetch(`${srv.url}/widget/nope.js`)).status).to.equal(404);
    expect((await fetch(`${srv.url}/widget/..%2Fserver%2Fstart.js`)).status).to.equal(404);
  });

  it('panel: shows the conversation, sends with ticks, receives live, retries nothing twice', async () => {
    const p = await portalWithNumber(srv);
    const anon = client(srv.url + '/api/v1');
    await anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Client', text: 'Hello from the client' });
    await waitFor(async () => (await p.user.get(`/conversations?phone=${encodeURIComponent(CLIENT)}`)).body.items.length === 1, 5000, 'conversation');

    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(CLIENT)}`);
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await page.locator('[data-testid=message-text]', { hasText: 'Hello from the client' }).waitFor();

    await page.locator('[data-testid=composer-input]').fill('Hi, this is the manager');
    await page.locator('[data-testid=composer-input]').press('Enter');
    const out = page.locator('[data-testid=message][data-direction=out]', { hasText: 'Hi, this is the manager' });
    await out.waitFor();
    await page.locator('[data-testid=message][data-direction=out][data-status=delivered], [data-testid=message][data-direction=out][data-status=read]').first().waitFor();
    await anon.post(`/simulator/phones/${encodeURIComponent(CLIENT)}/read`, {});
    await page.locator('[data-testid=message][data-direction=out][data-status=read]').waitFor();
    expect(await out.count()).to.equal(1);

    await anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Client', text: 'A live reply' });
    await page.locator('[data-testid=message][data-direction=in]', { hasText: 'A live reply' }).waitFor();

    const delivered = (await anon.get(`/simulator/delivered?phone=${encodeURIComponent(CLIENT)}`)).body.items as { text: string }[];
    expect(delivered.filter((m) => m.text === 'Hi, this is the manager')).to.have.length(1);

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'widget-standalone-panel.png') });
    await page.close();
  });

  it('panel: image with preview, voice note recorded, a failed send retried, a typed number started', async () => {
    const p = await portalWithNumber(srv, '+15550000011');
    const anon = client(srv.url + '/api/v1');
    const other = '+15550000077';
    await anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Client', text: 'hi' });
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(CLIENT)}&lang=ru`);
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await page.getByText('Сегодня').waitFor(); // the day separator, in Russian

    // An image: picked, previewed, sent, shown inline.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
    await page.locator('[data-testid=attach-input]').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
    await page.locator('[data-testid=attach-preview]').waitFor();
    await page.locator('[data-testid=send-button]').click();
    await page.locator('[data-testid=message][data-type=image][data-direction=out] img').waitFor();
    await waitFor(async () => ((await anon.get(`/simulator/delivered?phone=${encodeURIComponent(CLIENT)}`)).body.items as { type: string }[]).some((m) => m.type === 'image'), 5000, 'image delivered');

    // A voice note from Chromium's fake microphone: a voice message appears (the server takes it
    // as Ogg/Opus, or converts WebM/Opus once the conversion is in).
    await page.locator('[data-testid=record-button]').click();
    await page.locator('[data-testid=record-timer]').waitFor();
    await page.waitForTimeout(1200);
    await page.locator('[data-testid=record-stop]').click();
    await page.locator('[data-testid=message][data-type=voice][data-direction=out]').waitFor();

    // A client not on WhatsApp: the send fails with its reason; Retry once they are.
    await anon.put(`/simulator/phones/${encodeURIComponent(other)}`, { registered: false });
    await page.locator('[data-testid=new-conversation-input]').fill(other);
    await page.locator('[data-testid=new-conversation-input]').press('Enter');
    await page.locator(`[data-testid=conversation-item][data-phone="${other}"][aria-selected=true]`).waitFor();
    await page.locator('[data-testid=composer-input]').fill('Are you there?');
    await page.locator('[data-testid=send-button]').click();
    await page.locator('[data-testid=message][data-status=failed]', { hasText: 'Are you there?' }).waitFor();
    await anon.put(`/simulator/phones/${encodeURIComponent(other)}`, { registered: true });
    await page.locator('[data-testid=retry-button]').click();
    await page.locator('[data-testid=message][data-status=delivered], [data-testid=message][data-status=read]').filter({ hasText: 'Are you there?' }).waitFor();
    const got = (await anon.get(`/simulator/delivered?phone=${encodeURIComponent(other)}`)).body.items as { text: string }[];
    expect(got.filter((m) => m.text === 'Are you there?')).to.have.length(1);
    await page.close();
  });

  it('bitrix24.js outside a Bitrix24 frame: the SDK handshake fails, the panel still works on the boot token', async () => {
    const p = await portalWithNumber(srv, '+15550000021');
    await client(srv.url + '/api/v1').post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, text: 'from a deal' });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.url}/healthz`);
    const boot = { host: 'bitrix24', view: 'panel', apiBase: srv.url, token: p.userToken, tokenExpiresAt: new Date(Date.now() + 3600e3).toISOString(), entity: { type: 'phone', id: CLIENT }, lang: 'es', admin: false, userId: '1', memberId: 'm', domain: 'x.bitrix24.com' };
    await page.setContent(`<div id="incrm"></div><script>window.INCRM_BOOT=${JSON.stringify(boot)}</script><script src="${srv.widgetAssets.url('bitrix24.js')}"></script>`);
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await page.locator('[data-testid=message-text]', { hasText: 'from a deal' }).waitFor();
    expect(await page.locator('[data-testid=composer-input]').getAttribute('placeholder')).to.equal('Escribe un mensaje');
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('settings: connects a number by live QR; a non-admin sees no controls', async () => {
    const anon = client(srv.url + '/api/v1');
    const portal = (await anon.post('/simulator/portals', { crm: 'none', name: 'Settings' })).body as { adminToken: string; userToken: string };
    const page = await open(`view=settings&token=${portal.adminToken}&admin=1`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor();
    await page.locator('[data-testid=connect-button]').click();
    await page.locator('[data-testid=qr-image]').waitFor();
    const row = page.locator('[data-testid=number-row]');
    const id = await row.getAttribute('data-number-id');
    await anon.post(`/simulator/numbers/${id}/scan`, { phone: '+15550000009' });
    await page.locator('[data-testid=number-row][data-state=ready]').waitFor();
    await page.locator('[data-testid=settings-options]').waitFor();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'widget-standalone-settings.png') });

    await page.locator('[data-testid=disconnect-button]').click();
    await page.locator('[data-testid=confirm-button]').click();
    await page.locator('[data-testid=number-row][data-state=logged_out]').waitFor();
    await page.close();

    const ro = await open(`view=settings&token=${portal.userToken}&admin=0`);
    await ro.locator('[data-testid=settings-root][data-ready=true]').waitFor();
    expect(await ro.locator('[data-testid=connect-button]').count()).to.equal(0);
    expect(await ro.locator('[data-testid=disconnect-button]').count()).to.equal(0);
    await ro.close();
  });
});
