import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { chromiumPath, launchBrowser, SCREENSHOTS } from '../helpers/browser';
import { startTestServer } from '../helpers/server';

describe('the /demo page in Chromium', function () {
  this.timeout(60_000);
  let srv: RunningServer;
  let browser: Browser;

  before(async function () {
    if (!chromiumPath()) this.skip();
    srv = await startTestServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('connects a number by QR and chats as the manager and as the client side by side', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${srv.url}/demo`);
    await page.getByText('stream: live').waitFor();
    await page.getByRole('button', { name: 'Connect a WhatsApp number' }).click();
    await page.getByAltText('QR code').waitFor();
    await page.getByRole('button', { name: 'Scan with this phone' }).click();
    await page.locator('#numbers').getByText('ready').waitFor();

    await page.getByRole('button', { name: 'Open chat' }).click();
    await page.getByLabel('manager message').fill('Hello from the CRM');
    await page.locator('#sendForm').getByRole('button', { name: 'Send' }).click();
    await page.locator('#phoneMsgs').getByText('Hello from the CRM').waitFor();
    await page.getByLabel('client reply').fill('Hi, I am the client');
    await page.locator('#replyForm').getByRole('button', { name: 'Send' }).click();
    await page.locator('#managerMsgs').getByText('Hi, I am the client').waitFor();
    await page.getByRole('button', { name: /Read messages/ }).click();
    await page.locator('#managerMsgs .read').first().waitFor();

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, 'demo.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(fs.statSync(file).size).to.be.greaterThan(10_000);
  });
});
