// The account console at `/`: register, sign in and out, change the password, link portals
// with a one-time code, see each portal's licence, payments and numbers, connect a number by QR.
//
// Sessions: a random token in an HttpOnly, SameSite=Lax cookie — Secure always, except when the
// browser talks plain http to this machine (localhost, 127.0.0.0/8, ::1; development) — and only
// its SHA-256 is stored server-side. CSRF: every form
// carries the value of a separate random cookie (double submit), compared in constant time —
// a cross-site page can neither read that cookie nor make the browser send it on a POST.
import crypto from 'node:crypto';
import net from 'node:net';
import express, { type Request, type Response } from 'express';
import { AppError } from '../domain/errors';
import type { LicenceService } from '../domain/licenceService';
import { langFromHeader } from '../domain/licenceText';
import { planName } from '../domain/licencePlans';
import type { Database } from '../domain/ports';
import type { TokenService } from '../http/tokens';
import type { AccountRow } from '../persistence/repositories/accounts';
import type { AccountService } from './accounts';
import * as P from './pages';

export const SESSION_COOKIE = 'incrm_session';
export const CSRF_COOKIE = 'incrm_csrf';
/** The admin token minted for the embedded settings tab. */
const EMBED_TOKEN_MS = 30 * 60_000;

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    if (!k || k in out) continue;
    try {
      out[k] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      /* ignore a malformed cookie */
    }
  }
  return out;
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return net.isIPv6(h) && /^(0{0,4}:){2,7}0{0,3}1$/.test(h);
}

/**
 * Whether the console's cookies carry `Secure`: always, except for plain http to a loopback host
 * straight from the browser (no proxy headers), and then only when PUBLIC_URL, if set, is itself
 * plain http on a loopback host. Browsers keep Secure cookies from http://localhost (and
 * Chromium also from http://127.0.0.1), but not all of them do, so development over plain http
 * on this machine gets cookies without the flag; anywhere else they need HTTPS.
 */
export function secureCookies(publicUrl: string | null, req: Pick<Request, 'secure' | 'hostname' | 'headers'>): boolean {
  if (req.secure) return true;
  if (publicUrl) {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' || !isLoopbackHost(u.hostname)) return true;
  }
  const h = req.headers;
  if (h.forwarded || h['x-forwarded-for'] || h['x-forwarded-proto'] || h['x-forwarded-host']) return true;
  return !isLoopbackHost(req.hostname ?? '');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function consoleRouter(deps: {
  accounts: AccountService;
  licences: LicenceService;
  db: Database;
  tokens: TokenService;
  publicUrl: string | null;
  /** The widget bundle's URL (served by the widget assets route, with its content hash). */
  widgetUrl(): string;
}): express.Router {
  const { accounts, licences, db, tokens } = deps;
  const r = express.Router();
  const cookie = (req: Request, name: string, value: string, maxAgeMs: number | null) => {
    const parts = [`${name}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
    if (maxAgeMs !== null) parts.push(`Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`);
    if (secureCookies(deps.publicUrl, req)) parts.push('Secure');
    return parts.join('; ');
  };

  /** The CSRF token of this browser, set on first sight. */
  const csrfOf = (req: Request, res: Response): string => {
    if (typeof res.locals.csrf === 'string') return res.locals.csrf;
    const cookies = parseCookies(req.headers.cookie);
    let t = cookies[CSRF_COOKIE];
    if (!t || !/^[\w-]{32,64}$/.test(t)) {
      t = crypto.randomBytes(24).toString('base64url');
      res.append('Set-Cookie', cookie(req, CSRF_COOKIE, t, null));
    }
    res.locals.csrf = t;
    return t;
  };

  const checkCsrf = (req: Request) => {
    const want = parseCookies(req.headers.cookie)[CSRF_COOKIE];
    const got = typeof req.body?._csrf === 'string' ? req.body._csrf : '';
    if (!want || !got || !safeEqual(want, got)) throw new AppError(403, 'csrf', 'the form expired or did not come from this site; reload the page and try again');
  };

  const sessionToken = (req: Request) => parseCookies(req.headers.cookie)[SESSION_COOKIE] ?? null;
  const current = async (req: Request): Promise<AccountRow | null> => accounts.sessionAccount(sessionToken(req));

  const send = (res: Response, status: number, html: string) => {
    res.status(status);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.send(html);
  };

  const render = (req: Request, res: Response, title: string, body: string, account: AccountRow | null, status = 200, tail?: string) =>
    send(res, status, P.page({ title, csrf: csrfOf(req, res), account, body, tail }));

  /** Wraps a handler: form errors re-render with the message; a missing session goes to sign-in. */
  const handle =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    async (req: Request, res: Response): Promise<void> => {
      try {
        await fn(req, res);
      } catch (err) {
        if (err instanceof AppError && err.code === 'csrf') {
          // Over plain http (not this machine) the browser drops the Secure cookies: say so.
          const plainHttp = !req.secure && !deps.publicUrl?.startsWith('https://') && !/https/i.test(String(req.headers['x-forwarded-proto'] ?? ''));
          const why = plainHttp && secureCookies(deps.publicUrl, req) ? ' This console needs HTTPS: its cookies are Secure, so over plain http the browser does not keep them.' : '';
          render(req, res, 'Form expired', P.errorPage('Form expired', err.message + why), null, 403);
          return;
        }
        throw err;
      }
    };

  const needAccount = async (req: Request, res: Response): Promise<AccountRow | null> => {
    const acc = await current(req);
    if (!acc) res.redirect(303, '/login');
    return acc;
  };

  const str = (v: unknown) => (typeof v === 'string' ? v : '');

  r.get('/', handle(async (req, res) => {
    if (await current(req)) return res.redirect(303, '/account');
    render(req, res, 'Sign in', P.signInForm(csrfOf(req, res)), null);
  }));
  r.get('/login', handle(async (req, res) => {
    if (await current(req)) return res.redirect(303, '/account');
    render(req, res, 'Sign in', P.signInForm(csrfOf(req, res)), null);
  }));

  r.post('/login', handle(async (req, res) => {
    checkCsrf(req);
    const email = str(req.body.email);
    try {
      const acc = await accounts.signIn(email, str(req.body.password));
      const s = await accounts.openSession(acc);
      res.append('Set-Cookie', cookie(req, SESSION_COOKIE, s.token, s.expiresAt - Date.now()));
      res.redirect(303, '/account');
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      render(req, res, 'Sign in', P.signInForm(csrfOf(req, res), err.message, email), null, err.status);
    }
  }));

  r.get('/register', handle(async (req, res) => {
    render(req, res, 'Create an account', P.registerForm(csrfOf(req, res)), null);
  }));

  r.post('/register', handle(async (req, res) => {
    checkCsrf(req);
    const email = str(req.body.email);
    try {
      const acc = await accounts.register(email, str(req.body.password), typeof req.body.confirm === 'string' ? req.body.confirm : undefined);
      const s = await accounts.openSession(acc);
      res.append('Set-Cookie', cookie(req, SESSION_COOKIE, s.token, s.expiresAt - Date.now()));
      res.redirect(303, '/account?welcome=1');
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      render(req, res, 'Create an account', P.registerForm(csrfOf(req, res), err.message, email), null, err.status);
    }
  }));

  r.post('/logout', handle(async (req, res) => {
    checkCsrf(req);
    const t = sessionToken(req);
    if (t) await accounts.closeSession(t);
    res.append('Set-Cookie', cookie(req, SESSION_COOKIE, '', 0));
    res.redirect(303, '/login');
  }));

  const summaries = async (acc: AccountRow, lang: string): Promise<P.PortalSummary[]> => {
    const out: P.PortalSummary[] = [];
    for (const id of await accounts.portalsOf(acc)) {
      const portal = await db.repos.portals.get(id);
      if (portal) out.push({ id, name: portal.name, crm: portal.crm, licence: await licences.view(id, lang) });
    }
    return out;
  };

  const dashboard = async (req: Request, res: Response, acc: AccountRow, msg: { kind: 'error' | 'ok'; text: string } | null, status = 200) => {
    const lang = langFromHeader(req.header('accept-language'));
    render(req, res, 'Your portals', P.dashboard(csrfOf(req, res), acc, await summaries(acc, lang), msg), acc, status);
  };

  r.get('/account', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    await dashboard(req, res, acc, req.query.welcome ? { kind: 'ok', text: `Welcome! Your account id is ${acc.publicId}.` } : null);
  }));

  r.post('/account/link', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    checkCsrf(req);
    try {
      const portalId = await accounts.link(acc, str(req.body.code));
      const portal = await db.repos.portals.get(portalId);
      await dashboard(req, res, acc, { kind: 'ok', text: `Linked ${portal?.name ?? `portal #${portalId}`}.` });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      await dashboard(req, res, acc, { kind: 'error', text: err.message }, err.status);
    }
  }));

  r.get('/account/password', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    render(req, res, 'Password', P.passwordForm(csrfOf(req, res)), acc);
  }));

  r.post('/account/password', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    checkCsrf(req);
    try {
      await accounts.changePassword(acc, str(req.body.current), str(req.body.password), typeof req.body.confirm === 'string' ? req.body.confirm : undefined, sessionToken(req));
      render(req, res, 'Password', P.passwordForm(csrfOf(req, res), { kind: 'ok', text: 'The password was changed.' }), acc);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      render(req, res, 'Password', P.passwordForm(csrfOf(req, res), { kind: 'error', text: err.message }), acc, err.status);
    }
  }));

  /** The portal, when linked to this account; else a 404 page (no hint whether it exists). */
  const linkedPortal = async (req: Request, res: Response, acc: AccountRow) => {
    const id = Number(req.params.id);
    const linked = Number.isInteger(id) && (await accounts.portalsOf(acc)).includes(id);
    const portal = linked ? await db.repos.portals.get(id) : null;
    if (!portal) render(req, res, 'Not found', P.errorPage('Not found', 'No such portal is linked to this account.'), acc, 404);
    return portal;
  };

  r.get('/account/portals/:id', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    const portal = await linkedPortal(req, res, acc);
    if (!portal) return;
    const lang = langFromHeader(req.header('accept-language'));
    const o = await licences.overview(portal.id);
    const next = o.licence.nextPlan ? licences.catalog.get(o.licence.nextPlan.code) : null;
    const body = P.portalPage({
      portal,
      licence: await licences.view(portal.id, lang),
      nextPlan: next && o.licence.nextPlan ? { name: planName(next, lang), from: o.licence.nextPlan.from } : null,
      numberLimit: o.licence.numberLimit,
      numbers: o.numbers,
      payments: o.payments.map((x) => {
        const plan = licences.catalog.get(x.plan);
        return { ...x, plan: plan ? planName(plan, lang) : x.plan };
      }),
    });
    render(req, res, portal.name, body, acc);
  }));

  r.get('/account/portals/:id/numbers', handle(async (req, res) => {
    const acc = await needAccount(req, res);
    if (!acc) return;
    const portal = await linkedPortal(req, res, acc);
    if (!portal) return;
    const now = Date.now();
    const token = tokens.issue({ portalId: portal.id, userId: `console:${acc.publicId}`, admin: true }, EMBED_TOKEN_MS, now);
    const base = deps.publicUrl ? deps.publicUrl.replace(/\/$/, '') : `${req.protocol}://${req.get('host')}`;
    const boot = {
      host: 'standalone',
      view: 'settings',
      // The widget's API client adds /api/v1 itself: the base is the server's origin.
      apiBase: base,
      token,
      tokenExpiresAt: new Date(now + EMBED_TOKEN_MS).toISOString(),
      lang: langFromHeader(req.header('accept-language')),
      admin: true,
    };
    const { body, tail } = P.numbersPage(portal, boot, deps.widgetUrl());
    render(req, res, 'Connect a number', body, acc, 200, tail);
  }));

  return r;
}
