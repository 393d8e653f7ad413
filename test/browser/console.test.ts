import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { client, startTestServer } from '../helpers/server';
import { ensureWidgetBuilt } from '../helpers/widget';

describe('the account console in Chromium', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let browser: Browser;

  before(async function () {
    if (!chromiumPath()) this.skip();
    await ensureWidgetBuilt();
    srv = await startTestServer({}, { licenceTickMs: 0 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it("registers, signs out and in, links a portal by code and shows its licence", async () => {
    const anon = client(srv.url + '/api/v1');
    const portal = (await anon.post('/simulator/portals', { crm: 'kommo', name: 'Acme Trading' })).body as { portalId: number; adminToken: string };
    await srv.licences.recordPayment(portal.portalId, { planCode: 'team', reference: 'INV-2026-001' }, 'test');
    const { code } = (await client(srv.url + '/api/v1', portal.adminToken).post('/console/link-code')).body as { code: string };

    const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
    await page.goto(srv.url + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByLabel('E-mail').fill('owner@acme.example');
    await page.getByLabel(/^Password/).fill('a long enough password');
    await page.getByLabel('Repeat the password').fill('a long enough password');
    await page.getByRole('button', { name: 'Create the account' }).click();
    await page.getByText(/Welcome! Your account id is ACC-/).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('E-mail').fill('owner@acme.example');
    await page.getByLabel('Password').fill('a wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('wrong e-mail or password').waitFor();
    await page.getByLabel('Password').fill('a long enough password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Your portals' }).waitFor();

    await page.getByLabel('Link code').fill(code);
    await page.getByRole('button', { name: 'Link', exact: true }).click();
    await page.getByText('Linked Acme Trading.').waitFor();
    await page.getByRole('link', { name: 'Acme Trading' }).click();
    await page.getByRole('heading', { name: /Acme Trading/ }).waitFor();
    const licence = page.locator('#licence');
    await licence.getByText('Active').waitFor();
    expect(await licence.locator('#plan').textContent()).to.equal('Team');
    expect(await licence.locator('#days-left').textContent()).to.equal('30');
    await page.getByText('€39.00').waitFor();

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, 'console-portal.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(fs.statSync(file).size).to.be.greaterThan(10_000);

    // Connect a number by QR with the same settings tab the CRMs show (the standalone widget bundle).
    await page.getByRole('link', { name: 'Connect a number by QR' }).click();
    await page.locator('[data-testid=settings-root][data-ready=true]').waitFor();
    await page.locator('[data-testid=connect-button]').click();
    await page.locator('[data-testid=qr-image]').waitFor();
    const row = page.locator('[data-testid=number-row][data-state=qr]');
    const numberId = Number(await row.getAttribute('data-number-id'));
    await anon.post(`/simulator/numbers/${numberId}/scan`, { phone: '+15550003030' });
    await page.locator(`[data-testid=number-row][data-number-id="${numberId}"][data-state=ready]`).waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-numbers.png'), fullPage: true });

    // Plain http to 127.0.0.1 is the one case without Secure (Chromium would keep a Secure cookie
    // from http://127.0.0.1 and http://localhost too, but not every browser does).
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'incrm_session')).to.deep.include({ httpOnly: true, sameSite: 'Lax', secure: false });
    expect(cookies.find((c) => c.name === 'incrm_csrf')).to.deep.include({ httpOnly: true, sameSite: 'Lax', secure: false });
  });

  it('Chromium keeps Secure cookies from plain http://127.0.0.1 (an https PUBLIC_URL makes them Secure)', async () => {
    const secure = await startTestServer({ PUBLIC_URL: 'https://console.example.test' }, { licenceTickMs: 0 });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(secure.url + '/register');
      await page.getByLabel('E-mail').fill('secure@acme.example');
      await page.getByLabel(/^Password/).fill('a long enough password');
      await page.getByLabel('Repeat the password').fill('a long enough password');
      await page.getByRole('button', { name: 'Create the account' }).click();
      await page.getByText(/Welcome! Your account id is ACC-/).waitFor();
      const cookies = await context.cookies();
      expect(cookies.find((c) => c.name === 'incrm_session')).to.deep.include({ httpOnly: true, sameSite: 'Lax', secure: true });
    } finally {
      await context.close();
      await secure.close();
    }
  });
});
