import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { startDemoBitrix24, type DemoBitrix24 } from '../fakes/bitrix24Demo';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { client, startTestServer, waitFor } from '../helpers/server';

// The same core flows as the Kommo host suite, in the emulated Bitrix24 deal card (/demo/bitrix24):
// the placement form POSTed into the iframe, the b24jssdk frame protocol answered by the parent,
// the deal's timeline from the fake portal.

const CLIENT = '+15550000012';
const NUMBER = '+15550002001';

describe('Bitrix24 host: the placement frame in an emulated Bitrix24 deal card', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let demo: DemoBitrix24;
  let browser: Browser;
  let ctx: BrowserContext;
  let numberId: number;
  const sim = () => client(srv.url + '/api/v1');

  const delivered = async () => (await sim().get(`/simulator/delivered?phone=${encodeURIComponent(CLIENT)}`)).body.items as Array<Record<string, any>>;
  const shot = async (page: Page, name: string) => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, name);
    await page.screenshot({ path: file });
    expect(fs.statSync(file).size).to.be.greaterThan(10_000);
  };
  const openDeal = async (user = '7'): Promise<{ page: Page; frame: FrameLocator }> => {
    const page = await ctx.newPage();
    await page.goto(demo.pageUrl(srv.url) + `&user=${user}`);
    const frame = page.frameLocator('#frame');
    await frame.locator('[data-testid=panel-root][data-ready=true]').waitFor({ timeout: 15_000 });
    return { page, frame };
  };

  before(async function () {
    this.timeout(120_000);
    if (!chromiumPath()) this.skip(); // in CI chromiumPath() throws instead: a missing browser fails
    // The bundles built fresh from the sources (not whatever dist/ holds), served by the server.
    const widgetDir = fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-b24-host-'));
    const { buildWidget } = await import('../../scripts/build-widget.mjs');
    await buildWidget({ outDir: widgetDir });
    demo = await startDemoBitrix24({ contactPhone: CLIENT });
    srv = await startTestServer({ ...demo.env, BITRIX24_BACKOFF_MS: '50' }, { widgetDir });
    expect(await demo.install(srv.url), 'install').to.equal(200);
    await waitFor(() => srv.db.knex('bitrix24_portals').where({ member_id: demo.portal.memberId }).first(), 5000, 'installed portal');
    await sim().put(`/simulator/phones/${encodeURIComponent(CLIENT)}`, { deliverAfterMs: 700, readAfterMs: null });
    browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
    ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, permissions: ['microphone'] });
    await ctx.addInitScript('window.__name = function (f) { return f; };');
  });
  after(async () => {
    await ctx?.close();
    await browser?.close();
    await srv?.close();
    await demo?.close();
  });

  it("connects a number by QR from the app's settings page (admin)", async () => {
    const page = await ctx.newPage();
    await page.goto(demo.pageUrl(srv.url) + '&user=1');
    await page.frameLocator('#frame').locator('[data-testid=panel-root]').waitFor({ timeout: 15_000 });
    await page.locator('#settings').click();
    const frame = page.frameLocator('#frame');
    await frame.locator('[data-testid=settings-root][data-ready=true]').waitFor({ timeout: 15_000 });
    await frame.locator('[data-testid=connect-button]').click();
    await frame.locator('[data-testid=qr-image]').waitFor();
    const row = frame.locator('[data-testid=number-row][data-state=qr]');
    await row.waitFor();
    numberId = Number(await row.getAttribute('data-number-id'));
    await sim().post(`/simulator/numbers/${numberId}/scan`, { phone: NUMBER });
    await frame.locator(`[data-testid=number-row][data-number-id="${numberId}"][data-state=ready]`).waitFor();
    await shot(page, 'bitrix24-settings.png');
    await page.close();
  });

  it('opens the deal: the conversation shows; ticks go sent → delivered → read; the reply appears live; the timeline mirrors it', async () => {
    expect(numberId, 'a connected number').to.be.a('number');
    await sim().post('/simulator/inbound', { to: NUMBER, from: CLIENT, name: 'Maria Silva', text: 'Hi from WhatsApp' });
    const { page, frame } = await openDeal();
    await frame.locator('[data-testid=message-text]', { hasText: 'Hi from WhatsApp' }).waitFor();
    await frame.locator('[data-testid=composer-input]').fill('Hello Maria, this is the deal team');
    await frame.locator('[data-testid=send-button]').click();
    const mine = frame.locator('[data-testid=message][data-direction=out]', { hasText: 'Hello Maria, this is the deal team' });
    await mine.and(frame.locator('[data-status=sent]')).waitFor();
    await mine.and(frame.locator('[data-status=delivered]')).waitFor();
    const wa = await waitFor(async () => (await delivered()).find((m) => m.text === 'Hello Maria, this is the deal team'), 5000, 'delivered');
    await sim().post(`/simulator/phones/${encodeURIComponent(CLIENT)}/read`, { waMessageId: wa.waMessageId });
    await mine.and(frame.locator('[data-status=read]')).waitFor();
    await sim().post('/simulator/inbound', { to: NUMBER, from: CLIENT, text: 'Thanks, talk soon' });
    await frame.locator('[data-testid=message][data-direction=in]', { hasText: 'Thanks, talk soon' }).waitFor();
    await page.locator('#timeline .tl', { hasText: 'Hello Maria, this is the deal team' }).first().waitFor({ timeout: 15_000 });
    await shot(page, 'bitrix24-panel.png');
    await page.close();
  });

  it('the frame completes the b24jssdk handshake with the portal page and the portal fits the frame to the panel', async () => {
    const { page, frame } = await openDeal();
    await frame.locator('[data-testid=message-text]', { hasText: 'Hi from WhatsApp' }).waitFor();
    const log = page.locator('#log');
    await waitFor(async () => /resizeWindow/.test((await log.textContent()) ?? ''), 10_000, 'resizeWindow from the frame');
    const lines = await log.locator('div').allInnerTexts();
    expect(lines.some((l) => l.startsWith('getInitData')), lines.join('\n')).to.equal(true);
    // The SDK asked after its init data: the log is newest first.
    expect(lines.findIndex((l) => l.startsWith('getInitData'))).to.be.greaterThan(lines.findIndex((l) => l.startsWith('resizeWindow')));
    // The frame's height is now the panel's (the portal page sets what the frame asked for).
    const content = await frame.locator('html').evaluate((el) => el.scrollHeight);
    const height = await page.locator('#frame').evaluate((el) => (el as HTMLIFrameElement).style.height);
    expect(height, 'the portal resized the frame').to.match(/^\d+px$/);
    expect(Math.abs(parseInt(height, 10) - Math.max(300, content))).to.be.lessThan(4);
    const asked = lines.filter((l) => l.startsWith('resizeWindow')).map((l) => Number(/"height":(\d+)/.exec(l)?.[1]));
    expect(asked[0], 'last resize asked for the content height').to.equal(parseInt(height, 10));
    await page.close();
  });

  it('a double click on send sends one message, with one Idempotency-Key, and starts no recording', async () => {
    const { page, frame } = await openDeal();
    const keys: Array<string | undefined> = [];
    await page.route('**/api/v1/conversations/*/messages', (route) => {
      if (route.request().method() === 'POST') keys.push(route.request().headers()['idempotency-key']);
      return route.fallback();
    });
    await frame.locator('[data-testid=composer-input]').fill('Just once in Bitrix24');
    await frame.locator('[data-testid=send-button]').dblclick();
    await frame.locator('[data-testid=message][data-direction=out]', { hasText: 'Just once in Bitrix24' }).and(frame.locator('[data-status=delivered]')).waitFor();
    await new Promise((r) => setTimeout(r, 800));
    expect(await frame.locator('[data-testid=record-timer]').count(), 'a recording started').to.equal(0);
    expect(keys.length, 'POSTs').to.equal(1);
    expect(keys[0], 'Idempotency-Key').to.be.a('string').and.have.length.greaterThan(8);
    expect(await frame.locator('[data-testid=message-text]', { hasText: 'Just once in Bitrix24' }).count()).to.equal(1);
    expect((await delivered()).filter((m) => m.text === 'Just once in Bitrix24')).to.have.length(1);
    await page.close();
  });

  it('sends an image and a voice note: the phone gets an image and an Ogg/Opus push-to-talk note', async () => {
    const { page, frame } = await openDeal();
    const before = (await delivered()).length;
    const png = fs.readFileSync(path.join(__dirname, '..', '..', 'manifest', 'kommo', 'images', 'logo_main.png'));
    await frame.locator('[data-testid=attach-input]').setInputFiles({ name: 'offer.png', mimeType: 'image/png', buffer: png });
    await frame.locator('[data-testid=attach-preview]').waitFor();
    await frame.locator('[data-testid=send-button]').click();
    const image = await waitFor(async () => (await delivered()).slice(before).find((m) => m.type === 'image'), 10_000, 'image');
    expect(image.mimetype).to.equal('image/png');
    await frame.locator('[data-testid=record-button]').click();
    await frame.locator('[data-testid=record-timer]').waitFor();
    await new Promise((r) => setTimeout(r, 1200));
    await frame.locator('[data-testid=record-stop]').click();
    const voice = await waitFor(async () => (await delivered()).slice(before).find((m) => m.type === 'voice'), 10_000, 'voice note');
    expect(voice.ptt).to.equal(true);
    expect(voice.mimetype).to.match(/^audio\/ogg/);
    await page.close();
  });

  it("the parent page's CSS does not reach the frame and the frame's does not reach the parent", async () => {
    const { page, frame } = await openDeal();
    await page.addStyleTag({ content: '* { font-family: serif !important; color: red !important } button { background: yellow !important }' });
    const inside = await frame.locator('[data-testid=composer-input]').evaluate((el) => ({ font: getComputedStyle(el).fontFamily, color: getComputedStyle(el).color }));
    expect(inside.font).to.not.match(/(^|, )serif$/);
    expect(inside.color).to.not.equal('rgb(255, 0, 0)');
    const parentStyles = await page.evaluate(() => document.querySelectorAll('style, link[rel=stylesheet]').length);
    expect(parentStyles, "the demo's own style and the test's").to.equal(2);
    await page.close();
  });

  it('a logged-out number shows its banner in the panel', async () => {
    const { page, frame } = await openDeal();
    await frame.locator('[data-testid=message-text]', { hasText: 'Thanks, talk soon' }).waitFor();
    await sim().post(`/simulator/numbers/${numberId}/unlink`);
    await frame.locator('[data-testid=banner][data-kind=logged-out]').waitFor({ timeout: 10_000 });
    await page.close();
  });
});
