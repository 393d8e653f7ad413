// Server-rendered pages of the account console. Every value goes through `esc`; every form
// carries the CSRF token. No client-side script except the widget embed on the numbers page.
import type { LicenceView } from '../domain/types';

export const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `
:root{--ink:#1d2430;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--brand:#128c7e;--brand-dark:#0b6b60;--warn:#b54708;--warnbg:#fffaeb;--bad:#b42318;--badbg:#fef3f2;--ok:#067647;--okbg:#ecfdf3}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line)}header .in{max-width:960px;margin:0 auto;padding:14px 20px;display:flex;align-items:center;gap:16px}
.logo{font-weight:700;font-size:18px;color:var(--ink);text-decoration:none}.logo span{color:var(--brand)}
header nav{margin-left:auto;display:flex;gap:12px;align-items:center;color:var(--muted);font-size:14px}
main{max-width:960px;margin:0 auto;padding:28px 20px 60px}h1{font-size:24px;margin:0 0 18px}h2{font-size:17px;margin:0 0 12px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px;margin-bottom:18px}
.narrow{max-width:420px;margin:40px auto}label{display:block;font-weight:600;font-size:14px;margin:12px 0 4px}
input[type=email],input[type=password],input[type=text]{width:100%;padding:10px 12px;border:1px solid #d0d5dd;border-radius:8px;font:inherit}
input:focus{outline:2px solid #9fdad2;border-color:var(--brand)}
button,.btn{display:inline-block;background:var(--brand);color:#fff;border:0;border-radius:8px;padding:10px 16px;font:inherit;font-weight:600;cursor:pointer;text-decoration:none}
button:hover,.btn:hover{background:var(--brand-dark)}button.link{background:none;color:var(--muted);padding:0;font-weight:400}button.link:hover{color:var(--ink);background:none}
.row{display:flex;gap:10px;align-items:flex-end}.row>*{flex:1}.row>button{flex:0 0 auto}
.msg{padding:10px 14px;border-radius:8px;margin-bottom:14px}.msg.error{background:var(--badbg);color:var(--bad)}.msg.ok{background:var(--okbg);color:var(--ok)}.msg.warn{background:var(--warnbg);color:var(--warn)}
table{width:100%;border-collapse:collapse;font-size:14px}th,td{text-align:left;padding:8px 6px;border-bottom:1px solid var(--line)}th{color:var(--muted);font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:13px;font-weight:600}
.b-trial{background:#eff8ff;color:#175cd3}.b-active{background:var(--okbg);color:var(--ok)}.b-expired{background:var(--badbg);color:var(--bad)}.b-suspended{background:#f2f4f7;color:#344054}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px}.kv small{display:block;color:var(--muted);font-size:13px}.kv b{font-size:17px}
.muted{color:var(--muted)}code.id{background:#f2f4f7;padding:2px 8px;border-radius:6px;font-size:14px}a{color:var(--brand-dark)}
`;

export interface PageOpts {
  title: string;
  csrf: string;
  account?: { publicId: string; email: string } | null;
  body: string;
  /** Extra markup at the end of <body> (the widget embed). */
  tail?: string;
}

export function page(o: PageOpts): string {
  const nav = o.account
    ? `<nav><span>${esc(o.account.email)}</span><a href="/account">Portals</a><a href="/account/password">Password</a>
       <form method="post" action="/logout" style="display:inline">${csrfField(o.csrf)}<button class="link" type="submit">Sign out</button></form></nav>`
    : `<nav><a href="/login">Sign in</a><a href="/register">Create an account</a></nav>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(o.title)} · InCRM</title><style>${CSS}</style></head><body>
<header><div class="in"><a class="logo" href="/">In<span>CRM</span></a><span class="muted">WhatsApp inside your CRM</span>${nav}</div></header>
<main>${o.body}</main>${o.tail ?? ''}</body></html>`;
}

export const csrfField = (csrf: string) => `<input type="hidden" name="_csrf" value="${esc(csrf)}">`;

export const flash = (kind: 'error' | 'ok' | 'warn', text: string | null | undefined) => (text ? `<div class="msg ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${esc(text)}</div>` : '');

export function signInForm(csrf: string, error?: string | null, email = ''): string {
  return `<div class="card narrow"><h1>Sign in</h1>${flash('error', error)}
<form method="post" action="/login">${csrfField(csrf)}
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required value="${esc(email)}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Sign in</button></p></form>
<p class="muted">No account yet? <a href="/register">Create one</a>.</p></div>`;
}

export function registerForm(csrf: string, error?: string | null, email = ''): string {
  return `<div class="card narrow"><h1>Create an account</h1>${flash('error', error)}
<form method="post" action="/register">${csrfField(csrf)}
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required value="${esc(email)}">
<label for="password">Password <span class="muted">(at least 10 characters)</span></label><input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required>
<label for="confirm">Repeat the password</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="10" required>
<p><button type="submit">Create the account</button></p></form>
<p class="muted">Already registered? <a href="/login">Sign in</a>.</p></div>`;
}

export function passwordForm(csrf: string, msg?: { kind: 'error' | 'ok'; text: string } | null): string {
  return `<div class="card narrow"><h1>Change the password</h1>${msg ? flash(msg.kind, msg.text) : ''}
<form method="post" action="/account/password">${csrfField(csrf)}
<label for="current">Current password</label><input id="current" name="current" type="password" autocomplete="current-password" required>
<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required>
<label for="confirm">Repeat the new password</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="10" required>
<p><button type="submit">Change the password</button></p></form>
<p class="muted">Other devices signed in to this account are signed out.</p></div>`;
}

const STATUS_LABEL: Record<LicenceView['status'], string> = { trial: 'Trial', active: 'Active', expired: 'Expired', suspended: 'Suspended' };

export const statusBadge = (s: LicenceView['status']) => `<span class="badge b-${s}" data-status="${s}">${STATUS_LABEL[s]}</span>`;

const day = (iso: string | null) => (iso ? esc(iso.slice(0, 10)) : '—');

export interface PortalSummary {
  id: number;
  name: string;
  crm: string;
  licence: LicenceView;
}

export function dashboard(csrf: string, account: { publicId: string; email: string }, portals: PortalSummary[], msg?: { kind: 'error' | 'ok'; text: string } | null): string {
  const rows = portals
    .map(
      (p) => `<tr><td><a href="/account/portals/${p.id}">${esc(p.name)}</a></td><td>${esc(crmName(p.crm))}</td><td>${statusBadge(p.licence.status)}</td>
<td>${esc(p.licence.plan?.name ?? '—')}</td><td>${day(p.licence.paidUntil)}</td><td>${p.licence.daysLeft ?? '—'}</td></tr>`,
    )
    .join('');
  return `<h1>Your portals</h1>${msg ? flash(msg.kind, msg.text) : ''}
<div class="card"><div class="grid"><div class="kv"><small>Account id</small><b><code class="id" id="account-id">${esc(account.publicId)}</code></b></div>
<div class="kv"><small>E-mail</small><b>${esc(account.email)}</b></div></div></div>
<div class="card"><h2>Linked portals</h2>${
    portals.length
      ? `<table><thead><tr><th>Portal</th><th>CRM</th><th>Licence</th><th>Plan</th><th>Access until</th><th>Days left</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<p class="muted">No portal is linked to this account yet.</p>'
  }</div>
<div class="card"><h2>Link a portal</h2><p class="muted">In Kommo or Bitrix24, open InCRM's settings tab and press <b>Link to the web console</b>: it shows a one-time code valid for 10 minutes.</p>
<form method="post" action="/account/link" class="row">${csrfField(csrf)}<div><label for="code">Link code</label><input id="code" name="code" type="text" placeholder="ABCD-EFGH" autocomplete="off" required></div><button type="submit">Link</button></form></div>`;
}

const crmName = (crm: string) => ({ kommo: 'Kommo', bitrix24: 'Bitrix24', none: '—' })[crm] ?? crm;

export function portalPage(p: {
  portal: { id: number; name: string; crm: string };
  licence: LicenceView;
  nextPlan: { name: string; from: string } | null;
  numberLimit: number;
  numbers: { id: number; phone: string | null; state: string }[];
  payments: { plan: string; amountEur: number | null; from: string; until: string; at: string }[];
}): string {
  const l = p.licence;
  const notice = l.notice ? flash(l.notice.kind === 'expiring' || l.notice.kind === 'maintenance' ? 'warn' : 'error', l.notice.message) : '';
  const numbers = p.numbers.length
    ? `<table><thead><tr><th>Number</th><th>State</th></tr></thead><tbody>${p.numbers.map((n) => `<tr><td>${esc(n.phone ?? `#${n.id} (not linked yet)`)}</td><td>${esc(n.state)}</td></tr>`).join('')}</tbody></table>`
    : '<p class="muted">No WhatsApp number connected.</p>';
  const payments = p.payments.length
    ? `<table><thead><tr><th>Date</th><th>Plan</th><th>Amount</th><th>Access</th></tr></thead><tbody>${p.payments
        .map((x) => `<tr><td>${day(x.at)}</td><td>${esc(x.plan)}</td><td>${x.amountEur === null ? '—' : `€${esc(x.amountEur.toFixed(2))}`}</td><td>${day(x.from)} → ${day(x.until)}</td></tr>`)
        .join('')}</tbody></table>`
    : '<p class="muted">No payments yet.</p>';
  return `<p><a href="/account">← Portals</a></p><h1>${esc(p.portal.name)} <span class="muted" style="font-size:15px">${esc(crmName(p.portal.crm))}</span></h1>${notice}
<div class="card" id="licence"><h2>Licence</h2><div class="grid">
<div class="kv"><small>Status</small><b>${statusBadge(l.status)}</b></div>
<div class="kv"><small>Plan</small><b id="plan">${esc(l.plan?.name ?? (l.status === 'trial' ? 'Trial' : '—'))}</b></div>
<div class="kv"><small>Access until</small><b id="paid-until">${day(l.paidUntil)}</b></div>
<div class="kv"><small>Days left</small><b id="days-left">${l.daysLeft ?? '—'}</b></div>
<div class="kv"><small>Numbers</small><b>${p.numbers.length} of ${p.numberLimit}</b></div></div>
${p.nextPlan ? `<p class="muted">Plan changes to <b>${esc(p.nextPlan.name)}</b> on ${day(p.nextPlan.from)}.</p>` : ''}
${l.reason ? `<p><b>Reason:</b> ${esc(l.reason)}</p>` : ''}</div>
<div class="card"><h2>WhatsApp numbers</h2>${numbers}<p><a class="btn" href="/account/portals/${p.portal.id}/numbers">Connect a number by QR</a></p></div>
<div class="card"><h2>Payments</h2>${payments}</div>`;
}

export function numbersPage(portal: { id: number; name: string }, boot: Record<string, unknown>, scriptUrl: string): { body: string; tail: string } {
  // JSON inside a <script>: `<` escaped so no value can close the tag.
  const json = JSON.stringify(boot).replace(/</g, '\\u003c');
  return {
    body: `<p><a href="/account/portals/${portal.id}">← ${esc(portal.name)}</a></p><h1>Connect a WhatsApp number</h1>
<div class="card"><div id="incrm"><p class="muted">Loading the settings…</p></div></div>`,
    tail: `<script>window.INCRM_BOOT = ${json};</script><script src="${esc(scriptUrl)}" defer></script>`,
  };
}

export function errorPage(title: string, text: string): string {
  return `<div class="card narrow"><h1>${esc(title)}</h1>${flash('error', text)}<p><a href="/">Back to the console</a></p></div>`;
}
