import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
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

    // A voice note from Chromium's fake microphone (WebM/Opus in Chromium): a voice message
    // appears; the server remuxes it to Ogg/Opus (the host suites check what the phone gets).
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
    await page.locator('[data-testid=message][data-status=failed]', { hasText: 'Are you there?' }).waitFor({ timeout: 8000 }).catch(async (err) => {
      const dom = await page.locator('[data-testid=message]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-id')}:${e.getAttribute('data-status')}:${e.textContent}`));
      const convs = (await p.user.get(`/conversations?phone=${encodeURIComponent(other)}`)).body.items;
      const msgs = convs[0] ? (await p.user.get(`/conversations/${convs[0].id}/messages`)).body.items : [];
      console.error('DEBUG dom', dom, 'api', JSON.stringify(msgs.map((m: any) => [m.id, m.status, m.text])));
      throw err;
    });
    await anon.put(`/simulator/phones/${encodeURIComponent(other)}`, { registered: true });
    await page.locator('[data-testid=retry-button]').click();
    await page.locator('[data-testid=message][data-status=delivered], [data-testid=message][data-status=read]').filter({ hasText: 'Are you there?' }).waitFor();
    const got = (await anon.get(`/simulator/delivered?phone=${encodeURIComponent(other)}`)).body.items as { text: string }[];
    expect(got.filter((m) => m.text === 'Are you there?')).to.have.length(1);

    // Our number is unlinked from the phone: the panel says so.
    await anon.post(`/simulator/numbers/${p.numberId}/unlink`, {});
    await page.locator('[data-testid=banner][data-kind=logged-out]').waitFor();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'widget-standalone-panel-media.png') });
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

  // ---------------------------------------------------------------- drafts, phones, numbers

  const deliveredTo = async (phone: string) => (await client(srv.url + '/api/v1').get(`/simulator/delivered?phone=${encodeURIComponent(phone)}`)).body.items as Array<Record<string, any>>;
  const item = (page: Page, phone: string) => page.locator(`[data-testid=conversation-item][data-phone="${phone}"]`);
  const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');

  it('panel: a draft, an attachment and a recording stay with their phone; switching phones; unread badge', async () => {
    const p = await portalWithNumber(srv, '+15550000031');
    const anon = client(srv.url + '/api/v1');
    const A = '+15550000032';
    const B = '+15550000033';
    await anon.post('/simulator/inbound', { to: p.numberPhone, from: A, name: 'Ann', text: 'hello from A' });
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(A)}`);
    await page.locator('[data-testid=message-text]', { hasText: 'hello from A' }).waitFor();
    const input = page.locator('[data-testid=composer-input]');

    // A draft and an attachment for A…
    await input.fill('draft for A');
    await page.locator('[data-testid=attach-input]').setInputFiles({ name: 'for-a.png', mimeType: 'image/png', buffer: PNG });
    await page.locator('[data-testid=attach-preview]').waitFor();

    // …do not follow the manager to B.
    await page.locator('[data-testid=new-conversation-input]').fill(B);
    await page.locator('[data-testid=new-conversation-input]').press('Enter');
    await item(page, B).and(page.locator('[aria-selected=true]')).waitFor();
    expect(await input.inputValue(), "B's composer").to.equal('');
    expect(await page.locator('[data-testid=attach-preview]').count(), "B's attachments").to.equal(0);
    await input.fill('for B');
    await input.press('Enter');
    await waitFor(async () => (await deliveredTo(B)).some((m) => m.text === 'for B'), 5000, 'B got its text');

    // A recording started in B and left for A is thrown away, sent to no one.
    await page.locator('[data-testid=record-button]').click();
    await page.locator('[data-testid=record-timer]').waitFor();
    await page.waitForTimeout(700);
    await item(page, A).click();
    await item(page, A).and(page.locator('[aria-selected=true]')).waitFor();
    expect(await page.locator('[data-testid=record-timer]').count(), 'recording stopped').to.equal(0);
    await page.locator('[data-testid=message-text]', { hasText: 'hello from A' }).waitFor();
    expect(await page.locator('[data-testid=message-text]', { hasText: 'for B' }).count(), "B's messages are not in A's thread").to.equal(0);

    // A's draft is back, and goes to A.
    expect(await input.inputValue(), "A's draft").to.equal('draft for A');
    await page.locator('[data-testid=attach-preview]').waitFor();
    await page.locator('[data-testid=send-button]').click();
    await waitFor(async () => (await deliveredTo(A)).some((m) => m.type === 'image' && m.text === 'draft for A'), 5000, 'A got its image with the caption');

    // A message to the phone not open: its unread badge; opening it reads it.
    await anon.post('/simulator/inbound', { to: p.numberPhone, from: B, text: 'unread for B' });
    await item(page, B).and(page.locator('[data-unread="1"]')).waitFor();
    expect(await item(page, B).locator('.badge').innerText()).to.equal('1');
    await item(page, A).and(page.locator('[data-unread="0"]')).waitFor(); // open: read
    await item(page, B).click();
    await page.locator('[data-testid=message-text]', { hasText: 'unread for B' }).waitFor();
    await item(page, B).and(page.locator('[data-unread="0"]')).waitFor();
    expect(await item(page, B).locator('.badge').count()).to.equal(0);
    await waitFor(async () => (await p.user.get(`/conversations?phone=${encodeURIComponent(B)}`)).body.items[0].unreadCount === 0, 5000, 'read on the server');

    await page.waitForTimeout(500);
    expect((await deliveredTo(A)).map((m) => m.type), 'A: the image only').to.deep.equal(['image']);
    expect((await deliveredTo(B)).map((m) => `${m.type}:${m.text}`), 'B: its text only').to.deep.equal(['text:for B']);
    await page.close();
  });

  it('panel: with several numbers the number to write from shows before any conversation, and starts it', async () => {
    const p = await portalWithNumber(srv, '+15550000041');
    const second = (await p.admin.post('/numbers')).body.id as number;
    await waitFor(async () => (await p.admin.get(`/numbers/${second}`)).body.state === 'qr', 5000, 'QR');
    await p.anon.post(`/simulator/numbers/${second}/scan`, { phone: '+15550000042' });
    await waitFor(async () => (await p.admin.get(`/numbers/${second}`)).body.state === 'ready', 5000, 'ready');
    const C = '+15550000043';
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(C)}`);
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await item(page, C).waitFor(); // the card's phone, no conversation yet
    const select = page.locator('[data-testid=number-select]');
    await select.waitFor();
    expect(await select.inputValue()).to.equal(String(p.numberId));
    await select.selectOption(String(second));
    await item(page, C).click();
    await item(page, C).and(page.locator('[aria-selected=true]')).waitFor();
    const convs = (await p.user.get(`/conversations?phone=${encodeURIComponent(C)}`)).body.items as Array<{ numberId: number }>;
    expect(convs.map((c) => c.numberId)).to.deep.equal([second]);
    expect(await select.inputValue()).to.equal(String(second));
    await page.locator('[data-testid=composer-input]').fill('from the second number');
    await page.locator('[data-testid=composer-input]').press('Enter');
    await waitFor(async () => (await deliveredTo(C)).find((m) => m.text === 'from the second number'), 5000, 'delivered');
    expect((await deliveredTo(C))[0]!.from).to.equal('+15550000042');
    await page.close();
  });

  it('panel: the drop overlay follows the drag across child elements and goes when it leaves', async () => {
    const p = await portalWithNumber(srv, '+15550000051');
    await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, text: 'drop here' });
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(CLIENT)}`);
    await page.locator('[data-testid=message-text]', { hasText: 'drop here' }).waitFor();
    const drag = (steps: Array<[string, string]>) =>
      page.evaluate((st) => {
        const root = document.getElementById('incrm')!.shadowRoot!;
        const dt = new DataTransfer();
        dt.items.add(new File(['hello'], 'note.txt', { type: 'text/plain' }));
        for (const [sel, type] of st) root.querySelector(sel)!.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, composed: true, dataTransfer: dt }));
      }, steps);
    const overlay = page.locator('.drop');
    const PANEL = '[data-testid=panel-root]';
    const CHILD = '[data-testid=composer-input]';
    // Into the panel, on to a child (the browser leaves the panel for it), off the panel from the child.
    await drag([[PANEL, 'dragenter'], [PANEL, 'dragover'], [CHILD, 'dragenter'], [PANEL, 'dragleave'], [CHILD, 'dragover']]);
    await overlay.waitFor();
    await drag([[CHILD, 'dragleave']]);
    await overlay.waitFor({ state: 'detached', timeout: 2000 });
    // A real drop still attaches, and takes the overlay away.
    await drag([[PANEL, 'dragenter'], [CHILD, 'dragenter'], [PANEL, 'dragleave'], [CHILD, 'dragover'], [CHILD, 'drop']]);
    await page.locator('[data-testid=attach-preview]', { hasText: 'note.txt' }).waitFor();
    expect(await overlay.count()).to.equal(0);
    await page.close();
  });

  it('panel: incoming image, video, audio and document render; each says "media unavailable" when its file is gone', async () => {
    const p = await portalWithNumber(srv, '+15550000061');
    const D = '+15550000062';
    const scratch = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(D)}`);
    // A real WebM video, recorded from a canvas by this Chromium.
    const video = await scratch.evaluate(async () => {
      const c = document.createElement('canvas');
      c.width = 64;
      c.height = 48;
      const g = c.getContext('2d')!;
      const rec = new MediaRecorder(c.captureStream(15), { mimeType: 'video/webm' });
      const chunks: Blob[] = [];
      rec.ondataavailable = (e) => chunks.push(e.data);
      let n = 0;
      const timer = setInterval(() => {
        g.fillStyle = n++ % 2 ? '#0a8' : '#f40';
        g.fillRect(0, 0, 64, 48);
      }, 40);
      const done = new Promise((r) => (rec.onstop = r));
      rec.start(100);
      await new Promise((r) => setTimeout(r, 600));
      rec.stop();
      await done;
      clearInterval(timer);
      const buf = new Uint8Array(await new Blob(chunks, { type: 'video/webm' }).arrayBuffer());
      let bin = '';
      for (const b of buf) bin += String.fromCharCode(b);
      return btoa(bin);
    });
    await scratch.close();
    const voice = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'chromium-voice.webm'));
    const pdf = Buffer.from('%PDF-1.4\n% InCRM test document\n' + 'x'.repeat(2000) + '\n%%EOF\n');
    const send = (media: { mimetype: string; data: string; filename?: string }, text?: string) => p.anon.post('/simulator/inbound', { to: p.numberPhone, from: D, media, ...(text ? { text } : {}) });
    const logo = fs.readFileSync(path.join(__dirname, '..', '..', 'manifest', 'kommo', 'images', 'logo.png'));
    expect((await send({ mimetype: 'image/png', data: logo.toString('base64'), filename: 'logo.png' }, 'a photo')).status).to.equal(202);
    expect((await send({ mimetype: 'video/webm', data: video, filename: 'clip.webm' })).status).to.equal(202);
    expect((await send({ mimetype: 'audio/webm', data: voice.toString('base64'), filename: 'song.webm' })).status).to.equal(202);
    expect((await send({ mimetype: 'application/pdf', data: pdf.toString('base64'), filename: 'offer.pdf' })).status).to.equal(202);
    await waitFor(async () => {
      const c = (await p.user.get(`/conversations?phone=${encodeURIComponent(D)}`)).body.items[0];
      return c && (await p.user.get(`/conversations/${c.id}/messages`)).body.items.length === 4;
    }, 5000, 'four messages stored');

    const bubble = (page: Page, type: string): Locator => page.locator(`[data-testid=message][data-direction=in][data-type=${type}]`);
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(D)}`);
    await bubble(page, 'document').waitFor();
    await waitFor(() => bubble(page, 'image').locator('img').evaluate((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth === 130), 5000, 'image decoded');
    await waitFor(() => bubble(page, 'video').locator('video').evaluate((el) => (el as HTMLVideoElement).readyState >= 1 && (el as HTMLVideoElement).videoWidth === 64), 5000, 'video metadata');
    await waitFor(() => bubble(page, 'audio').locator('audio').evaluate((el) => (el as HTMLAudioElement).readyState >= 1 && (el as HTMLAudioElement).duration > 0.5), 5000, 'audio metadata');
    expect(await bubble(page, 'document').locator('.dn').innerText()).to.equal('offer.pdf');
    expect(await bubble(page, 'document').locator('.lbl').innerText()).to.equal('2.0 KB');
    expect(await bubble(page, 'image').locator('[data-testid=message-text]').innerText()).to.equal('a photo');
    expect(await page.getByText('Media unavailable').count()).to.equal(0);
    // The full view of an image; the document downloads under its name.
    await bubble(page, 'image').locator('img').click();
    await page.locator('.full img').waitFor();
    await page.locator('.full').click();
    const download = page.waitForEvent('download');
    await bubble(page, 'document').locator('a.doc').click();
    expect((await download).suggestedFilename()).to.equal('offer.pdf');
    await page.close();

    // The files are gone from the server: every bubble says so (a fresh context: nothing cached).
    fs.rmSync(path.join(srv.config.DATA_DIR, 'media'), { recursive: true, force: true });
    const fresh: BrowserContext = await browser.newContext({ viewport: { width: 900, height: 760 } });
    const gone = await fresh.newPage();
    await gone.goto(`${srv.url}/demo/widget#token=${p.userToken}&admin=0&phone=${encodeURIComponent(D)}`);
    await bubble(gone, 'document').waitFor();
    for (const type of ['image', 'video', 'audio']) await bubble(gone, type).locator('.gone', { hasText: 'Media unavailable' }).waitFor({ timeout: 5000 });
    await bubble(gone, 'document').locator('a.doc').click();
    await bubble(gone, 'document').locator('.gone', { hasText: 'Media unavailable' }).waitFor({ timeout: 5000 });
    expect(await bubble(gone, 'image').locator('[data-testid=message-text]').innerText(), 'the caption stays').to.equal('a photo');
    await fresh.close();
  });

  it('panel: leaving while recording sends no voice note', async () => {
    const p = await portalWithNumber(srv, '+15550000071');
    const E = '+15550000072';
    await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: E, text: 'talk to me' });
    const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    // Every microphone track the page gets, to see that leaving releases it.
    await page.addInitScript(() => {
      const md = navigator.mediaDevices;
      const get = md.getUserMedia.bind(md);
      (window as any).__mic = [];
      md.getUserMedia = async (c) => {
        const s = await get(c);
        (window as any).__mic.push(...s.getTracks());
        return s;
      };
    });
    await page.goto(`${srv.url}/demo/widget#token=${p.userToken}&admin=0&phone=${encodeURIComponent(E)}`);
    await page.locator('[data-testid=message-text]', { hasText: 'talk to me' }).waitFor();
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/api\/v1\/conversations\/\d+\/messages$/.test(r.url())) posts.push(r.url());
    });
    await page.locator('[data-testid=record-button]').click();
    await page.locator('[data-testid=record-timer]').waitFor();
    await page.waitForTimeout(1000);
    await page.evaluate(() => (window as any).InCRMStandalone.mounted.unmount());
    await page.waitForTimeout(1500);
    expect(posts, 'no POST after the panel left').to.deep.equal([]);
    expect(await deliveredTo(E)).to.deep.equal([]);
    // …and the microphone was released.
    expect(await page.evaluate(() => (window as any).__mic.map((t: MediaStreamTrack) => t.readyState))).to.deep.equal(['ended']);
    await page.close();
  });

  it('panel and settings: licence texts in the CRM language, also after a live licence change', async () => {
    const p = await portalWithNumber(srv, '+15550000081');
    await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, text: 'привет' });
    const page = await open(`token=${p.userToken}&admin=0&phone=${encodeURIComponent(CLIENT)}&lang=ru`);
    await page.locator('[data-testid=message-text]', { hasText: 'привет' }).waitFor();
    const banner = page.locator('[data-testid=banner][data-kind=licence]');
    // A new portal is on its 3-day trial: the expiry notice, in Russian (the browser says en-US).
    await banner.waitFor();
    expect(await banner.innerText()).to.match(/^Пробный период заканчивается через \d дн\./);
    const settings = await open(`view=settings&token=${p.adminToken}&admin=1&lang=ru`);
    await settings.locator('[data-testid=licence-box] .banner', { hasText: 'Пробный период заканчивается' }).waitFor();

    // The operator suspends the portal: the live event (English) is shown in Russian.
    await srv.licences.suspend(p.portalId, 'проверка оплаты', 'test');
    await banner.filter({ hasText: 'InCRM приостановлен для этого портала: проверка оплаты' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-testid=composer-disabled]').innerText()).to.contain('InCRM приостановлен для этого портала');
    await settings.locator('[data-testid=licence-box][data-status=suspended] .banner', { hasText: 'InCRM приостановлен' }).waitFor({ timeout: 10_000 });
    expect(await page.getByText(/suspended/i).count(), 'no English').to.equal(0);
    await srv.licences.unsuspend(p.portalId, 'test');
    await page.locator('[data-testid=composer-input]').waitFor({ timeout: 10_000 });
    await page.close();
    await settings.close();
  });

  it('settings API: null unsets an option; a new pipeline drops the old stage; fields left out stay', async () => {
    const anon = client(srv.url + '/api/v1');
    const portal = (await anon.post('/simulator/portals', { crm: 'none', name: 'Options' })).body as { adminToken: string; userToken: string };
    const admin = client(srv.url + '/api/v1', portal.adminToken);
    const put = async (body: unknown) => {
      const r = await admin.put('/settings', body);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.settings as Record<string, unknown>;
    };
    expect(await put({ pipelineId: 'p1', stageId: 's1', responsibleUserId: 'u1', alertUserIds: ['u1', 'u2'], mirror: false })).to.deep.equal({ pipelineId: 'p1', stageId: 's1', responsibleUserId: 'u1', alertUserIds: ['u1', 'u2'], mirror: false });
    expect(await put({ pipelineId: 'p2' }), 'stage of the old pipeline dropped').to.deep.equal({ pipelineId: 'p2', responsibleUserId: 'u1', alertUserIds: ['u1', 'u2'], mirror: false });
    expect(await put({ pipelineId: 'p2', stageId: 's2' })).to.include({ pipelineId: 'p2', stageId: 's2' });
    expect(await put({ pipelineId: 'p2' }), 'same pipeline: stage kept').to.include({ stageId: 's2' });
    expect(await put({ pipelineId: 'p3', stageId: 's3' }), 'a new pipeline with its stage').to.include({ pipelineId: 'p3', stageId: 's3' });
    expect(await put({ pipelineId: null, stageId: null, responsibleUserId: null, alertUserIds: null })).to.deep.equal({ mirror: false });
    expect((await admin.get('/settings')).body.settings).to.deep.equal({ mirror: false });
    expect((await admin.put('/settings', { pipelineId: '' })).status, 'an empty id is not "unset"').to.equal(400);
    expect((await client(srv.url + '/api/v1', portal.userToken).put('/settings', { pipelineId: null })).status, 'admins only').to.equal(403);
  });
});
