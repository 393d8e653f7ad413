import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { startDemoKommo, type DemoKommo } from '../fakes/kommoDemo';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { client, startTestServer, waitFor } from '../helpers/server';

// The real Kommo archive (script.js + the app bundle, packed as `npm run build` packs it) inside
// the emulated Kommo page /demo/kommo, against the real server with the simulator engine and a
// fake Kommo account: what a manager and an admin do in Kommo, in headless Chromium.

const CLIENT = '+15550000002';
const NUMBER_A = '+15550001001';
const NUMBER_B = '+15550001002';
const REDIRECT_URI = 'https://incrm.example.test/kommo/oauth';

describe('Kommo host: the widget archive in an emulated Kommo page', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let demo: DemoKommo;
  let browser: Browser;
  let ctx: BrowserContext;
  let numberA: number;
  let sim: ReturnType<typeof client>;
  let admin: ReturnType<typeof client>;

  const cardUrl = (extra = '') => `${srv.url}/demo/kommo?view=lead&id=${demo.lead.id}&hostile=1${extra}`;
  const shot = async (page: Page, name: string) => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, name);
    await page.screenshot({ path: file });
    expect(fs.statSync(file).size).to.be.greaterThan(10_000);
  };
  const delivered = async (text?: string) => {
    const items = (await sim.get(`/simulator/delivered?phone=${encodeURIComponent(CLIENT)}`)).body.items as Array<Record<string, any>>;
    return text === undefined ? items : items.filter((m) => m.text === text);
  };
  const MESSAGES = '**/api/v1/conversations/*/messages';
  /** The Idempotency-Key of every message POST the page makes from now on (page.route). */
  const countPosts = async (page: Page) => {
    const keys: Array<string | undefined> = [];
    await page.route(MESSAGES, (route) => {
      if (route.request().method() === 'POST') keys.push(route.request().headers()['idempotency-key']);
      return route.fallback();
    });
    return keys;
  };
  const openCard = async (extra = '') => {
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(cardUrl(extra));
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor({ timeout: 15_000 });
    return { page, errors };
  };

  before(async function () {
    this.timeout(120_000);
    if (!chromiumPath()) this.skip(); // in CI chromiumPath() throws instead: a missing browser fails
    // The app bundle and the archive, built fresh from the sources, the way `npm run build` does.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-kommo-host-'));
    const { buildWidget } = await import('../../scripts/build-widget.mjs');
    await buildWidget({ outDir: tmp });
    const { packKommoWidget } = await import('../../scripts/kommo-widget.mjs');
    const archive = path.join(tmp, 'widget.zip');
    await packKommoWidget({ out: archive, app: path.join(tmp, 'kommo.js'), requireBundle: true, server: '' });

    demo = await startDemoKommo({ redirectUri: REDIRECT_URI, contactPhone: CLIENT });
    srv = await startTestServer({ ...demo.env, KOMMO_MAX_RPS: '1000' }, { kommoDemo: demo.provider(archive) });
    const status = await demo.install(srv.url);
    expect(status, 'install').to.be.oneOf([200, 202]);
    await waitFor(() => srv.db.knex('kommo_accounts').where({ account_id: String(demo.account.id) }).first(), 5000, 'installed account');

    // One connected number (through the widget API, as an admin), and a client who wrote first.
    const tok = await fetch(`${srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': demo.widgetJwt(501) } });
    admin = client(srv.url + '/api/v1', ((await tok.json()) as { token: string }).token);
    sim = client(srv.url + '/api/v1');
    numberA = (await admin.post('/numbers')).body.id;
    await waitFor(async () => (await admin.get(`/numbers/${numberA}`)).body.state === 'qr', 5000, 'QR');
    await sim.post(`/simulator/numbers/${numberA}/scan`, { phone: NUMBER_A });
    await waitFor(async () => (await admin.get(`/numbers/${numberA}`)).body.state === 'ready', 5000, 'ready');
    await sim.put(`/simulator/phones/${encodeURIComponent(CLIENT)}`, { deliverAfterMs: 700, readAfterMs: null });
    await sim.post('/simulator/inbound', { to: NUMBER_A, from: CLIENT, name: 'Maria Silva', text: 'Hello, I saw your website' });

    browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
    ctx = await browser.newContext({ viewport: { width: 1360, height: 820 }, permissions: ['microphone'] });
    // Alerts are polled every 10 s in Kommo; the demo's knob makes it quick here.
    await ctx.addInitScript(() => localStorage.setItem('incrm_alert_poll_ms', '300'));
    // tsx compiles the functions passed to page.evaluate with esbuild's keepNames helper.
    await ctx.addInitScript('window.__name = function (f) { return f; };');
  });
  afterEach(async () => {
    // A failed test leaves its page open; a stray tab would make the next one a background tab.
    for (const p of ctx?.pages() ?? []) await p.close();
  });
  after(async () => {
    await ctx?.close();
    await browser?.close();
    await srv?.close();
    await demo?.close();
  });

  it('loads script.js from the archive and calls the callbacks in Kommo order, each returning true', async () => {
    const { page, errors } = await openCard();
    const calls = await page.evaluate(() => (window as any).__demo.callbacks);
    expect(calls).to.deep.equal([
      { name: 'render', result: true },
      { name: 'init', result: true },
      { name: 'bind_actions', result: true },
    ]);
    // Mounted in a shadow root inside the right-column block render_template made.
    const inShadow = await page.evaluate(() => {
      const host = document.querySelector('#widgets_block .card-widgets__widget .incrm-whatsapp__root');
      return !!host?.shadowRoot?.querySelector('[data-testid=panel-root]');
    });
    expect(inShadow).to.equal(true);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('moving to another card (Kommo is a single-page app) unmounts the panel and mounts one for the new card', async () => {
    const { page } = await openCard();
    await page.locator('[data-testid=message-text]', { hasText: 'Hello, I saw your website' }).waitFor();
    await page.evaluate((id) => (window as any).__demo.switchCard('contact', id), demo.contact.id);
    await page.locator('.card-fields h1', { hasText: demo.contact.name }).waitFor();
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await page.locator(`[data-testid=conversation-item][data-phone="${CLIENT}"]`).first().waitFor();
    expect(await page.locator('.incrm-whatsapp__root').count(), 'one panel').to.equal(1);
    const calls = await page.evaluate(() => (window as any).__demo.callbacks.map((c: { name: string; result: unknown }) => `${c.name}:${c.result}`));
    expect(calls).to.deep.equal(['render:true', 'init:true', 'bind_actions:true', 'destroy:true', 'render:true', 'bind_actions:true']);
    await page.close();
  });

  it('opens a card: the conversation shows; text goes sent → delivered → read; the reply appears live; notes mirror it', async () => {
    const { page } = await openCard();
    await page.locator(`[data-testid=conversation-item][data-phone="${CLIENT}"]`).first().waitFor();
    await page.locator('[data-testid=message-text]', { hasText: 'Hello, I saw your website' }).waitFor();

    await page.locator('[data-testid=composer-input]').fill('Hi Maria, thanks for writing!');
    await page.locator('[data-testid=send-button]').click();
    const mine = page.locator('[data-testid=message][data-direction=out]', { hasText: 'Hi Maria, thanks for writing!' });
    await mine.and(page.locator('[data-status=sent]')).waitFor();
    await mine.and(page.locator('[data-status=delivered]')).waitFor();
    const wa = await waitFor(async () => (await delivered('Hi Maria, thanks for writing!'))[0], 5000, 'delivered to the phone');
    await sim.post(`/simulator/phones/${encodeURIComponent(CLIENT)}/read`, { waMessageId: wa.waMessageId });
    await mine.and(page.locator('[data-status=read]')).waitFor();

    await sim.post('/simulator/inbound', { to: NUMBER_A, from: CLIENT, text: 'Great, can we talk tomorrow?' });
    await page.locator('[data-testid=message][data-direction=in]', { hasText: 'Great, can we talk tomorrow?' }).waitFor();

    // Mirroring: the messages become notes in the lead's feed (the host page polls the fake Kommo).
    await page.locator('.feed-note', { hasText: 'Hi Maria, thanks for writing!' }).first().waitFor({ timeout: 10_000 });
    await page.locator('.feed-note', { hasText: 'Great, can we talk tomorrow?' }).first().waitFor({ timeout: 10_000 });
    await page.evaluate(() => document.getElementById('notifications')!.replaceChildren()); // toasts over the panel
    await shot(page, 'kommo-panel.png');
    await page.close();
  });

  it("speaks Kommo's language, and a manager (not an admin) sees the settings read-only", async () => {
    const { page } = await openCard('&lang=ru&user=502');
    await page.locator('[data-testid=composer-input][placeholder="Введите сообщение"]').waitFor();
    await page.goto(`${srv.url}/demo/kommo?view=settings&user=502`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await page.locator(`[data-testid=number-row][data-number-id="${numberA}"]`).waitFor();
    expect(await page.locator('[data-testid=connect-button]').count(), 'no connect button for a manager').to.equal(0);
    expect(await page.locator('[data-testid=disconnect-button]').count(), 'no disconnect button for a manager').to.equal(0);
    await page.close();
  });

  it('a double click on send sends one message, with one Idempotency-Key, and starts no recording', async () => {
    const { page } = await openCard();
    const posts = await countPosts(page);
    await page.locator('[data-testid=composer-input]').fill('Only once, please');
    await page.locator('[data-testid=send-button]').dblclick();
    await page.locator('[data-testid=message][data-direction=out]', { hasText: 'Only once, please' }).and(page.locator('[data-status=delivered]')).waitFor();
    await new Promise((r) => setTimeout(r, 800));
    // The second click landed where the microphone appears once the text is gone: no recording.
    expect(await page.locator('[data-testid=record-timer]').count(), 'a recording started').to.equal(0);
    expect(await page.locator('[data-testid=record-button]').count()).to.equal(1);
    expect(posts.length, 'POSTs').to.equal(1);
    expect(posts[0], 'Idempotency-Key').to.be.a('string').and.have.length.greaterThan(8);
    expect(await page.locator('[data-testid=message-text]', { hasText: 'Only once, please' }).count()).to.equal(1);
    expect(await delivered('Only once, please')).to.have.length(1);
    await page.close();
  });

  it('a network failure after the server took the message: the widget retries with the same key, the phone gets it once', async () => {
    const { page, errors } = await openCard();
    const keys: string[] = [];
    let cut = 0;
    await page.route(MESSAGES, async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.fallback();
      keys.push(req.headers()['idempotency-key'] ?? '');
      if (cut++ === 0) {
        // The request reaches the server (which stores and sends it); its answer is lost.
        const res = await route.fetch();
        expect(res.status()).to.equal(201);
        return route.abort('connectionreset');
      }
      return route.continue();
    });
    await page.locator('[data-testid=composer-input]').fill('Through a flaky network');
    await page.locator('[data-testid=send-button]').click();
    const mine = page.locator('[data-testid=message][data-direction=out]', { hasText: 'Through a flaky network' });
    await mine.and(page.locator('[data-status=delivered]')).waitFor({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(keys, 'two attempts, one key').to.have.length(2);
    expect(keys[1]).to.equal(keys[0]);
    expect(await mine.count(), 'one bubble').to.equal(1);
    expect(await page.locator('[data-testid=message][data-status=failed]').count()).to.equal(0);
    expect(await delivered('Through a flaky network'), 'the phone got it once').to.have.length(1);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('leaving the card while recording sends no voice note and releases the microphone', async () => {
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      const md = navigator.mediaDevices;
      const get = md.getUserMedia.bind(md);
      (window as any).__mic = [];
      md.getUserMedia = async (c) => {
        const st = await get(c);
        (window as any).__mic.push(...st.getTracks());
        return st;
      };
    });
    await page.goto(cardUrl());
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor({ timeout: 15_000 });
    const before = (await delivered()).length;
    const posts = await countPosts(page);
    await page.locator('[data-testid=record-button]').click();
    await page.locator('[data-testid=record-timer]').waitFor();
    await new Promise((r) => setTimeout(r, 1000));
    // Kommo moves to another card: destroy, then render for the new one.
    await page.evaluate((id) => (window as any).__demo.switchCard('contact', id), demo.contact.id);
    await page.locator('.card-fields h1', { hasText: demo.contact.name }).waitFor();
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await new Promise((r) => setTimeout(r, 1500));
    expect(posts, 'no message POSTed').to.deep.equal([]);
    expect((await delivered()).slice(before).filter((m) => m.type === 'voice')).to.deep.equal([]);
    expect(await page.evaluate(() => (window as any).__mic.map((t: MediaStreamTrack) => t.readyState))).to.deep.equal(['ended']);
    await page.close();
  });

  it('sends an image and a voice note from the fake microphone: the phone gets an image and an Ogg/Opus push-to-talk note', async () => {
    const { page, errors } = await openCard();
    await page.locator(`[data-testid=conversation-item][data-phone="${CLIENT}"]`).first().waitFor();
    const before = (await delivered()).length;

    const png = fs.readFileSync(path.join(__dirname, '..', '..', 'manifest', 'kommo', 'images', 'logo_main.png'));
    await page.locator('[data-testid=attach-input]').setInputFiles({ name: 'brochure.png', mimeType: 'image/png', buffer: png });
    await page.locator('[data-testid=attach-preview]').waitFor();
    await page.locator('[data-testid=send-button]').click();
    const image = await waitFor(async () => (await delivered()).slice(before).find((m) => m.type === 'image'), 10_000, 'image on the phone');
    expect(image.mimetype).to.equal('image/png');
    expect(image.size).to.equal(png.length);

    await page.locator('[data-testid=record-button]').click();
    await page.locator('[data-testid=record-timer]').waitFor();
    await new Promise((r) => setTimeout(r, 1500));
    await page.locator('[data-testid=record-stop]').click();
    const voice = await waitFor(async () => (await delivered()).slice(before).find((m) => m.type === 'voice'), 10_000, 'voice note on the phone');
    expect(voice.ptt).to.equal(true);
    expect(voice.mimetype).to.match(/^audio\/ogg/);
    await page.locator('[data-testid=message][data-direction=out][data-type=voice]').first().waitFor();

    // The stored note is a real Ogg/Opus stream Chromium itself can decode, about as long as recorded.
    const msgs = (await admin.get(`/conversations/${(await admin.get(`/conversations?phone=${encodeURIComponent(CLIENT)}`)).body.items[0].id}/messages`)).body.items as Array<Record<string, any>>;
    const stored = msgs.filter((m) => m.type === 'voice').pop()!;
    const url: string = stored.media?.url ?? stored.mediaUrl;
    expect(url, JSON.stringify(stored)).to.be.a('string');
    const seconds = await page.evaluate(async (u) => {
      const buf = await (await fetch(u)).arrayBuffer();
      const head = new TextDecoder().decode(new Uint8Array(buf.slice(0, 4)));
      const audio = await new OfflineAudioContext(1, 48_000, 48_000).decodeAudioData(buf);
      return { head, duration: audio.duration };
    }, url.startsWith('http') ? url : srv.url + url);
    expect(seconds.head).to.equal('OggS');
    expect(seconds.duration).to.be.within(0.8, 3);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it("keeps the host page's CSS out of the widget and the widget's CSS out of the host page", async () => {
    const { page } = await openCard();
    await page.locator('[data-testid=message-text]').first().waitFor();
    const r = await page.evaluate(() => {
      const host = document.querySelector('.incrm-whatsapp__root')!;
      const root = host.shadowRoot!;
      const cs = (el: Element) => getComputedStyle(el);
      // With an empty composer the send button is the microphone (as in WhatsApp).
      const send = cs(root.querySelector('[data-testid=send-button], [data-testid=record-button]')!);
      const input = cs(root.querySelector('[data-testid=composer-input]')!);
      const text = cs(root.querySelector('[data-testid=message-text]')!);
      const hostButton = cs(document.querySelector('.host-button')!);
      // Every class the widget uses, put on a plain host element: styled exactly as one without.
      const classes = new Set<string>();
      root.querySelectorAll('[class]').forEach((e) => e.classList.forEach((c) => classes.add(c)));
      const a = document.createElement('div');
      const b = document.createElement('div');
      a.className = [...classes].join(' ');
      a.textContent = b.textContent = 'probe';
      document.body.append(a, b);
      const props = ['display', 'color', 'background-color', 'font-family', 'font-size', 'padding-top', 'margin-top', 'border-top-width', 'position', 'border-radius'];
      const leaked = props.filter((p) => cs(a).getPropertyValue(p) !== cs(b).getPropertyValue(p));
      a.remove();
      b.remove();
      const d = (window as any).__demo;
      return {
        send: { font: send.fontFamily, color: send.color, bg: send.backgroundColor, border: send.borderTopStyle, size: send.fontSize },
        input: { font: input.fontFamily, color: input.color, bg: input.backgroundColor },
        text: { font: text.fontFamily, color: text.color, underline: text.textDecorationLine },
        hostButton: { bg: hostButton.backgroundColor, border: hostButton.borderTopStyle, font: hostButton.fontFamily },
        classes: classes.size,
        leaked,
        baseline: d.hostBaseline,
        now: d.probe(),
      };
    });
    const RED = 'rgb(255, 0, 0)';
    for (const [what, s] of Object.entries({ send: r.send, input: r.input, text: r.text })) {
      expect(s.font, `${what} font`).to.not.match(/Times|(^|, )serif$/);
      expect(s.color, `${what} color`).to.not.equal(RED);
    }
    expect(r.send.bg, 'send button background').to.not.equal('rgb(255, 255, 0)');
    expect(r.send.border, 'send button border').to.not.equal('dashed');
    expect(r.send.size).to.not.equal('22px');
    expect(r.input.bg).to.not.equal('rgb(34, 34, 34)');
    expect(r.text.underline).to.not.equal('underline');
    // The host's own hostile rules still apply to the host (we did not override them globally)…
    expect(r.hostButton).to.deep.equal({ bg: 'rgb(255, 255, 0)', border: 'dashed', font: '"Times New Roman", serif' });
    // …and the widget added no global styles and changed nothing of the host's.
    expect(r.classes).to.be.greaterThan(5);
    expect(r.leaked, 'widget classes styled outside the shadow root').to.deep.equal([]);
    expect(r.now).to.deep.equal(r.baseline);
    await page.close();
  });

  it('connects a number by QR from the settings modal, and the advanced settings page shows it', async () => {
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/demo/kommo?view=settings&hostile=1`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    const calls = await page.evaluate(() => (window as any).__demo.callbacks.map((c: { name: string }) => c.name));
    expect(calls).to.deep.equal(['render', 'init', 'bind_actions', 'settings']);
    await page.locator(`[data-testid=number-row][data-number-id="${numberA}"][data-state=ready]`).waitFor();
    await page.locator('[data-testid=connect-button]').click();
    await page.locator('[data-testid=qr-image]').waitFor();
    const row = page.locator('[data-testid=number-row][data-state=qr]');
    await row.waitFor();
    const numberB = Number(await row.getAttribute('data-number-id'));
    expect(numberB).to.be.greaterThan(numberA);
    await shot(page, 'kommo-settings-qr.png');
    await sim.post(`/simulator/numbers/${numberB}/scan`, { phone: NUMBER_B });
    await page.locator(`[data-testid=number-row][data-number-id="${numberB}"][data-state=ready]`).waitFor();
    await page.locator('[data-testid=settings-options]').waitFor();
    await shot(page, 'kommo-settings.png');

    await page.goto(`${srv.url}/demo/kommo?view=advanced`);
    await page.locator('#work-area-incrm_whatsapp [data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await page.locator(`[data-testid=number-row][data-number-id="${numberB}"][data-state=ready]`).waitFor();
    await page.close();
  });

  it('alerts a new inbound message as a Kommo notification that opens the card', async () => {
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/demo/kommo?view=advanced`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await sim.post('/simulator/inbound', { to: NUMBER_A, from: CLIENT, text: 'Are you there?' });
    const note = page.locator('#notifications .notification', { hasText: 'Are you there?' }).first();
    await note.waitFor({ timeout: 10_000 }).catch(async (err) => {
      const shown = await page.evaluate(() => (window as any).__demo.notifications);
      const queue = (await admin.get('/kommo/alerts?after=0&limit=100')).body;
      const ls = await page.evaluate(() => JSON.stringify(localStorage));
      throw new Error(`${err.message}\nshown: ${JSON.stringify(shown)}\nqueue: ${JSON.stringify(queue)}\nstorage: ${ls}`);
    });
    await note.locator('a').click();
    await page.waitForURL(new RegExp(`view=lead&id=${demo.lead.id}`));
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid=message-text]', { hasText: 'Are you there?' }).waitFor();
    await page.close();
  });

  it("the demo page's phone simulator scans a QR and writes as the client", async () => {
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/demo/kommo?view=settings`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await page.locator('#sim_toggle').click();
    await page.locator('[data-testid=connect-button]').click();
    const row = page.locator('[data-testid=number-row][data-state=qr]');
    await row.waitFor();
    const id = await row.getAttribute('data-number-id');
    await page.locator(`#sim_numbers [data-scan="${id}"]`).click();
    await page.locator(`[data-testid=number-row][data-number-id="${id}"][data-state=ready]`).waitFor();

    await page.goto(cardUrl().replace('&hostile=1', ''));
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await page.locator('#sim_to option', { hasText: NUMBER_A }).waitFor({ state: 'attached' });
    await page.locator('#sim_to').selectOption(NUMBER_A);
    await page.locator('#sim_text').fill('Written on the simulated phone');
    await page.locator('#sim_send').click();
    await page.locator('[data-testid=message-text]', { hasText: 'Written on the simulated phone' }).waitFor();
    await page.close();
  });

  it('a logged-out number shows its banner in the panel', async () => {
    const { page } = await openCard();
    await page.locator('[data-testid=message-text]', { hasText: 'Are you there?' }).waitFor();
    await sim.post(`/simulator/numbers/${numberA}/unlink`);
    await page.locator('[data-testid=banner][data-kind=logged-out]').waitFor({ timeout: 10_000 });
    await page.close();
  });

  it('settings: options can be cleared; a new pipeline resets the stage; no alert recipient means the default, not an empty list', async () => {
    const original = (await admin.get('/settings')).body.settings as Record<string, unknown>;
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/demo/kommo?view=settings`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    const form = page.locator('[data-testid=settings-options]');
    await form.locator('#o-pipe option', { hasText: 'WhatsApp' }).waitFor({ state: 'attached' });
    const puts: unknown[] = [];
    await page.route('**/api/v1/settings', (route) => {
      if (route.request().method() === 'PUT') puts.push(route.request().postDataJSON());
      return route.fallback();
    });
    const saved = async () => {
      const n = puts.length;
      await form.locator('button[type=submit]').click();
      await waitFor(() => puts.length > n, 5000, 'PUT /settings');
      await form.locator('.note', { hasText: 'Saved' }).waitFor();
      return (await admin.get('/settings')).body.settings as Record<string, unknown>;
    };
    const alert = (name: string) => form.locator('.chk label', { hasText: name }).locator('input');

    await form.locator('#o-pipe').selectOption({ label: 'Sales' });
    await form.locator('#o-stage').selectOption({ label: 'Initial contact' });
    await form.locator('#o-resp').selectOption({ label: 'Sam Sales' });
    await alert('Ana Admin').check();
    await alert('Sam Sales').uncheck();
    expect(await saved()).to.deep.include({ pipelineId: '7000001', stageId: '142000001', responsibleUserId: '502', alertUserIds: ['501'] });

    // Another pipeline: the stage of the old one goes, in the form and on the server.
    await form.locator('#o-pipe').selectOption({ label: 'WhatsApp' });
    expect(await form.locator('#o-stage').inputValue()).to.equal('');
    const s2 = await saved();
    expect(s2).to.include({ pipelineId: '7000042' });
    expect(s2).to.not.have.property('stageId');

    // Back to "any" everywhere, every recipient unticked.
    await form.locator('#o-pipe').selectOption('');
    await form.locator('#o-resp').selectOption('');
    await alert('Ana Admin').uncheck();
    const s3 = await saved();
    for (const k of ['pipelineId', 'stageId', 'responsibleUserId', 'alertUserIds']) expect(s3, k).to.not.have.property(k);
    expect(puts.at(-1)).to.deep.include({ pipelineId: null, stageId: null, responsibleUserId: null, alertUserIds: null });
    for (const b of puts) expect((b as { alertUserIds?: unknown }).alertUserIds, 'never an empty list').to.not.deep.equal([]);
    // The form shows what the server now holds.
    await page.reload();
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await form.locator('#o-pipe option', { hasText: 'WhatsApp' }).waitFor({ state: 'attached' });
    expect(await form.locator('#o-pipe').inputValue()).to.equal('');
    expect(await form.locator('#o-resp').inputValue()).to.equal('');
    expect(await form.locator('.chk input:checked').count()).to.equal(0);
    await page.close();

    const restore: Record<string, unknown> = { pipelineId: null, stageId: null, responsibleUserId: null, alertUserIds: null };
    for (const [k, v] of Object.entries(original)) restore[k] = v;
    expect((await admin.put('/settings', restore)).status).to.equal(200);
  });

  it('the settings modal closed without destroy: the app unmounts and its live stream closes', async () => {
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      const ES = window.EventSource;
      const all: EventSource[] = [];
      (window as any).__es = all;
      (window as any).EventSource = class extends ES {
        constructor(url: string | URL, init?: EventSourceInit) {
          super(url, init);
          all.push(this);
        }
      };
    });
    await page.goto(`${srv.url}/demo/kommo?view=settings`);
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await waitFor(() => page.evaluate(() => (window as any).__es.some((e: EventSource) => e.readyState === 1)), 5000, 'stream open');
    // Kommo closes the modal: its markup leaves the page, no callback.
    await page.evaluate(() => document.querySelector('.modal')!.remove());
    await waitFor(() => page.evaluate(() => (window as any).__es.every((e: EventSource) => e.readyState === 2)), 5000, 'every stream closed');
    const calls = await page.evaluate(() => (window as any).__demo.callbacks.map((c: { name: string }) => c.name));
    expect(calls, 'no destroy was called').to.not.include('destroy');
    await page.close();
  });
});
