import http from 'node:http';
import { expect } from 'chai';
import { isLoopbackHost, secureCookies } from '../../server/console/router';
import type { RunningServer } from '../../server/main';
import { startTestServer } from '../helpers/server';
import { testDatabases } from '../helpers/databases';
import { licenceServer, newPortal, type OffsetClock } from './world';

/** A cookie-keeping browser stand-in over real HTTP (no redirects followed, so we see them). */
class Browser {
  readonly jar = new Map<string, string>();
  lastSetCookie: string[] = [];
  constructor(private readonly base: string) {}

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(method: 'GET' | 'POST', path: string, form?: Record<string, string>) {
    const res = await fetch(this.base + path, {
      method,
      redirect: 'manual',
      headers: { Cookie: this.cookieHeader(), ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    this.lastSetCookie = res.headers.getSetCookie();
    for (const c of this.lastSetCookie) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const k = pair!.slice(0, i);
      const v = pair!.slice(i + 1);
      if (v === '' || /Max-Age=0/.test(c)) this.jar.delete(k);
      else this.jar.set(k, v);
    }
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  }

  get(path: string) {
    return this.request('GET', path);
  }

  /** Loads the page first (as a person would), then posts the form with its CSRF token. */
  async submit(pagePath: string, action: string, fields: Record<string, string>) {
    const page = await this.get(pagePath);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)?.[1];
    if (!csrf) throw new Error(`no CSRF token on ${pagePath}`);
    return this.request('POST', action, { _csrf: csrf, ...fields });
  }
}

for (const target of testDatabases()) {
  describe(`account console on ${target.name}`, function () {
    let srv: RunningServer;
    let clock: OffsetClock;
    before(async () => {
      const url = await target.create();
      // A slow-down large enough to stand out of scrypt's own time on a loaded machine.
      ({ srv, clock } = await licenceServer({ ...(url ? { DATABASE_URL: url } : {}), PUBLIC_URL: 'https://console.example.test' }, { console: { slowdownMs: 400 } }));
    });
    after(async () => {
      await srv?.close();
      await target.dropAll();
    });
    afterEach(() => {
      clock.offset = 0;
    });

    const register = async (b: Browser, email: string, password = 'correct horse battery') => b.submit('/register', '/register', { email, password, confirm: password });

    it('registers with a unique account id, sets a HttpOnly Secure SameSite session cookie, signs out and in', async () => {
      const b = new Browser(srv.url);
      const home = await b.get('/');
      expect(home.status).to.equal(200);
      expect(home.html).to.include('Sign in');
      const csrfCookie = b.lastSetCookie.find((c) => c.startsWith('incrm_csrf='))!;
      expect(csrfCookie).to.match(/HttpOnly/).and.match(/SameSite=Lax/).and.match(/Secure/);

      const reg = await register(b, 'Owner@Example.com');
      expect(reg.status).to.equal(303);
      expect(reg.location).to.equal('/account?welcome=1');
      const session = b.lastSetCookie.find((c) => c.startsWith('incrm_session='))!;
      expect(session).to.match(/; Path=\//).and.match(/HttpOnly/).and.match(/SameSite=Lax/).and.match(/Secure/).and.match(/Max-Age=\d+/);
      const acc = await b.get('/account');
      expect(acc.status).to.equal(200);
      const id = /id="account-id">(ACC-[A-Z0-9]{4}-[A-Z0-9]{4})</.exec(acc.html)?.[1];
      expect(id).to.be.a('string');
      expect(acc.html).to.include('owner@example.com');
      const stored = await srv.db.knex('console_accounts').where({ email: 'owner@example.com' }).first();
      expect(stored.password_hash).to.match(/^scrypt\$32768\$8\$1\$/);
      expect(stored.password_hash).to.not.include('correct horse');
      const sessions = await srv.db.knex('console_sessions');
      expect(sessions.map((s) => s.id_hash)).to.not.include(b.jar.get('incrm_session'));

      const other = new Browser(srv.url);
      await register(other, 'second@example.com');
      const id2 = /id="account-id">(ACC-[A-Z0-9-]+)</.exec((await other.get('/account')).html)?.[1];
      expect(id2).to.not.equal(id);
      expect((await register(new Browser(srv.url), 'owner@example.com')).html).to.include('already exists');
      expect((await register(new Browser(srv.url), 'short@example.com', 'short')).html).to.include('at least 10 characters');

      const out = await b.submit('/account', '/logout', {});
      expect(out.status).to.equal(303);
      expect((await b.get('/account')).status, 'signed out').to.equal(303);
      const back = await b.submit('/login', '/login', { email: 'owner@example.com', password: 'correct horse battery' });
      expect(back.status).to.equal(303);
      expect((await b.get('/account')).status).to.equal(200);
    });

    it('a wrong password is refused; repeated ones slow down and then lock the login for a while', async () => {
      const b = new Browser(srv.url);
      await register(b, 'locky@example.com');
      const anon = new Browser(srv.url);
      const wrong = await anon.submit('/login', '/login', { email: 'locky@example.com', password: 'not the password' });
      expect(wrong.status).to.equal(401);
      expect(wrong.html).to.include('wrong e-mail or password');
      expect(anon.jar.has('incrm_session')).to.equal(false);
      const unknown = await anon.submit('/login', '/login', { email: 'nobody@example.com', password: 'whatever123' });
      expect(unknown.status).to.equal(401);
      const times: number[] = [];
      for (let i = 2; i <= 4; i++) {
        const t = Date.now();
        expect((await anon.submit('/login', '/login', { email: 'locky@example.com', password: `wrong ${i}` })).status).to.equal(401);
        times.push(Date.now() - t);
      }
      expect(times[2]!, 'the 4th failure waits (2 × 400 ms) longer than the 2nd (none)').to.be.greaterThan(times[0]! + 500);
      const fifth = await anon.submit('/login', '/login', { email: 'locky@example.com', password: 'wrong 5' });
      expect(fifth.status).to.equal(429);
      expect(fifth.html).to.match(/locked for 15 more minutes/);
      const right = await anon.submit('/login', '/login', { email: 'locky@example.com', password: 'correct horse battery' });
      expect(right.status, 'even the right password while locked').to.equal(429);
      clock.advance(16 * 60_000);
      expect((await anon.submit('/login', '/login', { email: 'locky@example.com', password: 'correct horse battery' })).status).to.equal(303);
      const audit = await srv.db.repos.audit.list();
      expect(audit.some((e) => e.action === 'account.locked')).to.equal(true);
    });

    it('ten wrong passwords sent at once are counted one by one: at most four are checked, the login locks once', async () => {
      const b = new Browser(srv.url);
      await register(b, 'parallel@example.com');
      const publicId = /id="account-id">(ACC-[A-Z0-9-]+)</.exec((await b.get('/account')).html)![1]!;
      const anon = new Browser(srv.url);
      const csrf = /name="_csrf" value="([^"]+)"/.exec((await anon.get('/login')).html)![1]!;
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => anon.request('POST', '/login', { _csrf: csrf, email: 'parallel@example.com', password: `guess number ${i}` })),
      );
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 401).length, `answers ${statuses}`).to.be.at.most(4);
      expect(statuses.filter((s) => s === 429).length).to.be.at.least(6);
      expect(statuses.every((s) => s === 401 || s === 429)).to.equal(true);
      const right = await anon.submit('/login', '/login', { email: 'parallel@example.com', password: 'correct horse battery' });
      expect(right.status, 'locked: even the right password').to.equal(429);
      const locks = (await srv.db.repos.audit.list()).filter((e) => e.action === 'account.locked' && e.actor === `account:${publicId}`);
      expect(locks).to.have.length(1);
      clock.advance(16 * 60_000);
      expect((await anon.submit('/login', '/login', { email: 'parallel@example.com', password: 'correct horse battery' })).status).to.equal(303);
    });

    it('wrong current passwords on the password form count towards the lockout too', async () => {
      const a = new Browser(srv.url);
      await register(a, 'pwguess@example.com');
      const statuses: number[] = [];
      for (let i = 1; i <= 5; i++) {
        statuses.push((await a.submit('/account/password', '/account/password', { current: `guess ${i} of 5`, password: 'brand new secret', confirm: 'brand new secret' })).status);
      }
      expect(statuses).to.deep.equal([401, 401, 401, 401, 429]);
      const page = await a.submit('/account/password', '/account/password', { current: 'correct horse battery', password: 'brand new secret', confirm: 'brand new secret' });
      expect(page.status, 'locked for the password form').to.equal(429);
      expect(page.html).to.match(/locked for 15 more minutes/);
      expect((await new Browser(srv.url).submit('/login', '/login', { email: 'pwguess@example.com', password: 'correct horse battery' })).status, 'and for sign-in').to.equal(429);
      clock.advance(16 * 60_000);
      expect((await a.submit('/account/password', '/account/password', { current: 'correct horse battery', password: 'brand new secret', confirm: 'brand new secret' })).status).to.equal(200);
    });

    it('refuses a form without the CSRF token, or with another browser’s', async () => {
      const b = new Browser(srv.url);
      await b.get('/login');
      const none = await b.request('POST', '/register', { email: 'csrf@example.com', password: 'correct horse battery', confirm: 'correct horse battery' });
      expect(none.status).to.equal(403);
      expect(none.html).to.include('did not come from this site');
      const other = new Browser(srv.url);
      const page = await other.get('/register');
      const foreign = /name="_csrf" value="([^"]+)"/.exec(page.html)![1]!;
      const forged = await b.request('POST', '/register', { _csrf: foreign, email: 'csrf@example.com', password: 'correct horse battery', confirm: 'correct horse battery' });
      expect(forged.status).to.equal(403);
      expect(await srv.db.knex('console_accounts').where({ email: 'csrf@example.com' }).first()).to.equal(undefined);
      // Signed in, a change of password without the token is refused as well.
      await register(b, 'csrf2@example.com');
      expect((await b.request('POST', '/account/password', { current: 'correct horse battery', password: 'new password 123', confirm: 'new password 123' })).status).to.equal(403);
    });

    it('changes the password (current one required) and signs other devices out', async () => {
      const a = new Browser(srv.url);
      await register(a, 'pw@example.com');
      const other = new Browser(srv.url);
      await other.submit('/login', '/login', { email: 'pw@example.com', password: 'correct horse battery' });
      expect((await other.get('/account')).status).to.equal(200);
      const bad = await a.submit('/account/password', '/account/password', { current: 'nope nope nope', password: 'brand new secret', confirm: 'brand new secret' });
      expect(bad.status).to.equal(401);
      const good = await a.submit('/account/password', '/account/password', { current: 'correct horse battery', password: 'brand new secret', confirm: 'brand new secret' });
      expect(good.status).to.equal(200);
      expect(good.html).to.include('The password was changed.');
      expect((await a.get('/account')).status, 'this device stays in').to.equal(200);
      expect((await other.get('/account')).status, 'others are out').to.equal(303);
      const n = new Browser(srv.url);
      expect((await n.submit('/login', '/login', { email: 'pw@example.com', password: 'correct horse battery' })).status).to.equal(401);
      expect((await n.submit('/login', '/login', { email: 'pw@example.com', password: 'brand new secret' })).status).to.equal(303);
    });

    it('links a portal with a one-time code; an expired or reused code is refused; shows licence, payments, numbers and the QR embed', async () => {
      const p = await newPortal(srv, 'Acme Kommo');
      expect((await p.user.post('/console/link-code')).status, 'admins only').to.equal(403);
      const code = (await p.admin.post('/console/link-code')).body as { code: string; expiresAt: string };
      expect(code.code).to.match(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      expect(Date.parse(code.expiresAt) - clock.now()).to.be.within(9 * 60_000, 10 * 60_000);
      const b = new Browser(srv.url);
      await register(b, 'linker@example.com');
      const linked = await b.submit('/account', '/account/link', { code: code.code.toLowerCase() });
      expect(linked.status).to.equal(200);
      expect(linked.html).to.include('Linked Acme Kommo.');
      expect(linked.html).to.include('href="/account/portals/' + p.portalId + '"');

      const thief = new Browser(srv.url);
      await register(thief, 'thief@example.com');
      const reused = await thief.submit('/account', '/account/link', { code: code.code });
      expect(reused.status).to.equal(400);
      expect(reused.html).to.include('already used');
      expect((await thief.get(`/account/portals/${p.portalId}`)).status, 'not linked: no access').to.equal(404);

      const old = (await p.admin.post('/console/link-code')).body.code as string;
      clock.advance(11 * 60_000);
      const expired = await thief.submit('/account', '/account/link', { code: old });
      expect(expired.status).to.equal(400);
      expect(expired.html).to.include('expired');
      expect((await thief.submit('/account', '/account/link', { code: 'ZZZZ-ZZZZ' })).html).to.include('not valid');

      await srv.licences.recordPayment(p.portalId, { planCode: 'team', reference: 'INV-7' }, 'test');
      const page = await b.get(`/account/portals/${p.portalId}`);
      expect(page.status).to.equal(200);
      expect(page.html).to.include('data-status="active"');
      expect(page.html).to.include('<b id="plan">Team</b>');
      expect(page.html).to.match(/<b id="days-left">30<\/b>/);
      expect(page.html).to.include('€39.00');
      expect(page.html).to.include('0 of 3');

      const embed = await b.get(`/account/portals/${p.portalId}/numbers`);
      const boot = JSON.parse(/window\.INCRM_BOOT = (\{.*?\});<\/script>/.exec(embed.html)![1]!);
      expect(boot).to.deep.include({ host: 'standalone', view: 'settings', apiBase: 'https://console.example.test', admin: true, lang: 'en' });
      expect(embed.html).to.match(/<script src="\/widget\/standalone\.js(\?v=[0-9a-f]+)?" defer><\/script>/);
      const principal = srv.tokens.verify(boot.token);
      expect(principal).to.deep.include({ portalId: p.portalId, admin: true });
      expect(Date.parse(boot.tokenExpiresAt) - Date.now()).to.be.within(29 * 60_000, 30 * 60_000 + 1000);
      const audit = (await srv.db.repos.audit.list({ portalId: p.portalId })).map((e) => e.action);
      expect(audit).to.include.members(['console.link_code', 'console.portal_linked']);
    });
  });
}

/** GET over plain http with any Host header (fetch does not let a test set it). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; setCookie: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: ([] as string[]).concat(res.headers['set-cookie'] ?? []), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('console cookie flags over plain http', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startTestServer({}, { licenceTickMs: 0 }); // no PUBLIC_URL, plain http on 127.0.0.1
  });
  after(async () => {
    await srv?.close();
  });

  const csrfCookie = async (headers: Record<string, string>, base = srv.url) => {
    const res = await rawGet(base + '/login', headers);
    expect(res.status).to.equal(200);
    return res.setCookie.find((c) => c.startsWith('incrm_csrf='))!;
  };

  it('leaves Secure out only for plain http to a loopback host, straight from the browser', async () => {
    const port = srv.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) {
      const c = await csrfCookie({ Host: host });
      expect(c, host).to.match(/HttpOnly/).and.match(/SameSite=Lax/);
      expect(c, host).to.not.match(/Secure/);
    }
    for (const host of [`console.example.test:${port}`, `192.168.1.20:${port}`, `127.example.test:${port}`]) {
      expect(await csrfCookie({ Host: host }), host).to.match(/HttpOnly/).and.match(/SameSite=Lax/).and.match(/; Secure/);
    }
    // Behind a proxy on this machine the browser is not on loopback: Secure.
    expect(await csrfCookie({ Host: `127.0.0.1:${port}`, 'X-Forwarded-For': '203.0.113.9' })).to.match(/; Secure/);
    expect(await csrfCookie({ Host: `127.0.0.1:${port}`, 'X-Forwarded-Proto': 'https' })).to.match(/; Secure/);
  });

  it('sets the session cookie the same way: HttpOnly and SameSite on loopback http, plus Secure elsewhere', async () => {
    const b = new Browser(srv.url);
    const reg = await b.submit('/register', '/register', { email: 'plain@example.com', password: 'correct horse battery', confirm: 'correct horse battery' });
    expect(reg.status).to.equal(303);
    const session = b.lastSetCookie.find((c) => c.startsWith('incrm_session='))!;
    expect(session).to.match(/HttpOnly/).and.match(/SameSite=Lax/).and.match(/Max-Age=\d+/);
    expect(session).to.not.match(/Secure/);
    expect((await b.get('/account')).status, 'the browser keeps it').to.equal(200);
    // A form over plain http from elsewhere: the browser dropped the Secure CSRF cookie, and the page says why.
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(srv.url + '/login', { method: 'POST', headers: { Host: 'console.example.test', 'Content-Type': 'application/x-www-form-urlencoded' } }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end('email=a%40b.c&password=x');
    });
    expect(res.status).to.equal(403);
    expect(res.body).to.include('This console needs HTTPS');
  });

  it('decides by PUBLIC_URL when it is set', () => {
    const req = (hostname: string, headers: Record<string, string> = {}, secure = false) => ({ secure, hostname, headers });
    expect(secureCookies(null, req('127.0.0.1'))).to.equal(false);
    expect(secureCookies('http://localhost:3000', req('127.0.0.1'))).to.equal(false);
    expect(secureCookies('http://127.0.0.1:3000', req('localhost'))).to.equal(false);
    expect(secureCookies('http://localhost:3000', req('192.168.1.20')), 'reached from the LAN').to.equal(true);
    expect(secureCookies('https://incrm.example.com', req('127.0.0.1'))).to.equal(true);
    expect(secureCookies('http://incrm.example.com', req('127.0.0.1')), 'a public plain-http URL still gets Secure').to.equal(true);
    expect(secureCookies(null, req('127.0.0.1', {}, true)), 'over TLS').to.equal(true);
    expect(['localhost', 'LOCALHOST.', '127.1.2.3', '[::1]', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'].every(isLoopbackHost)).to.equal(true);
    expect(['example.com', '128.0.0.1', '10.0.0.1', '::2', '1::1', 'localhost.example.com', ''].some(isLoopbackHost)).to.equal(false);
  });
});
