import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../server/main';
import { startDemoBitrix24, type DemoBitrix24 } from '../fakes/bitrix24Demo';
import { chromiumPath, launchBrowser } from '../helpers/browser';
import { startTestServer } from '../helpers/server';

describe('/demo/bitrix24 in Chromium: the emulated portal card', function () {
  this.timeout(60_000);
  let demo: DemoBitrix24;
  let srv: RunningServer;
  let browser: Browser;
  before(async function () {
    if (!chromiumPath()) this.skip();
    demo = await startDemoBitrix24();
    srv = await startTestServer(demo.env);
    expect(await demo.install(srv.url)).to.equal(200);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
    await demo?.close();
  });

  it('POSTs the placement form into the tab iframe and answers the b24jssdk handshake', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(demo.pageUrl(srv.url).replace(srv.url, srv.url.replace('127.0.0.1', 'localhost')));
    await page.getByRole('heading', { name: 'Website redesign' }).waitFor();
    const frame = page.frameLocator('#frame');
    await frame.locator('#incrm').waitFor({ state: 'attached' });
    const f = page.frames().find((x) => x.url().includes('/bitrix24/placement'))!;
    const bootData = (await f.evaluate('window.INCRM_BOOT')) as Record<string, unknown>;
    expect(bootData).to.include({ host: 'bitrix24', view: 'panel', memberId: demo.portal.memberId, domain: demo.portal.domain, userId: '7', admin: false });
    expect(bootData.entity).to.deep.equal({ type: 'deal', id: String(demo.deal.ID) });
    // The SDK inside the frame finds its parent: getInitData answered by the emulated portal.
    const init = await f.evaluate(`new Promise(function (resolve, reject) {
      var s = document.createElement('script'); s.src = '/bitrix24/b24jssdk.js';
      s.onload = function () { B24Js.initializeB24Frame().then(function (b24) {
        return b24.parent.resizeWindow(600, 700).then(function () { resolve({ placement: b24.placement.placement, id: b24.placement.options.ID, member: b24.auth.getAuthData().member_id }); });
      }, reject); };
      document.head.appendChild(s);
    })`);
    expect(init).to.deep.equal({ placement: 'CRM_DEAL_DETAIL_TAB', id: String(demo.deal.ID), member: demo.portal.memberId });
    expect(await page.locator('#log').textContent()).to.contain('getInitData');
    expect(await page.locator('#frame').evaluate((el) => (el as HTMLIFrameElement).style.height)).to.equal('700px');
  });
});
