import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { client, portalWithNumber, waitFor } from '../helpers/server';
import { ensureWidgetBuilt } from '../helpers/widget';
import { licenceServer, operatorApi, type OffsetClock } from '../licence/world';

// What a manager sees when the portal's licence has run out: the history stays readable, the
// composer is disabled with the server's reason, and a payment brings sending back live.
describe('widget with an expired licence, in Chromium', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let clock: OffsetClock;
  let browser: Browser;
  const CLIENT = '+15550000042';

  before(async function () {
    if (!chromiumPath()) this.skip();
    await ensureWidgetBuilt();
    ({ srv, clock } = await licenceServer());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('shows the history, disables the composer with the reason, and enables it again after a payment', async () => {
    const p = await portalWithNumber(srv);
    const anon = client(srv.url + '/api/v1');
    await anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Client', text: 'Is my order ready?' });
    await waitFor(async () => (await p.user.get(`/conversations?phone=${encodeURIComponent(CLIENT)}`)).body.items.length === 1, 5000, 'conversation');

    clock.days(3.5); // past the 3-day trial
    await srv.licences.tick();
    expect((await p.user.get('/licence')).body).to.deep.include({ status: 'expired', canSend: false });

    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(`${srv.url}/demo/widget#token=${p.userToken}&admin=0&phone=${encodeURIComponent(CLIENT)}`);
    await page.locator('[data-testid=panel-root][data-ready=true]').waitFor();
    await page.locator('[data-testid=message-text]', { hasText: 'Is my order ready?' }).waitFor();
    const banner = page.locator('[data-testid=banner][data-kind=licence]');
    await banner.waitFor();
    expect(await banner.innerText()).to.match(/trial has ended: sending is paused/i);
    // The composer gives way to the reason: nothing to type into, nothing to send.
    const note = page.locator('[data-testid=composer-disabled]');
    await note.waitFor();
    expect(await note.innerText()).to.match(/trial has ended/i);
    expect(await page.locator('[data-testid=composer-input]').count()).to.equal(0);
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'widget-licence-expired.png') });

    // The operator records a payment: the licence event reaches the open panel, sending is back.
    const paid = await operatorApi(srv).post(`/portals/${p.portalId}/payments`, { plan: 'team', amountEur: 39, reference: 'INV-W1' });
    expect(paid.status, JSON.stringify(paid.body)).to.be.oneOf([200, 201]);
    await page.locator('[data-testid=composer-input]').waitFor({ timeout: 10_000 });
    expect(await note.count()).to.equal(0);
    expect(await banner.count()).to.equal(0);
    await page.close();
  });
});
