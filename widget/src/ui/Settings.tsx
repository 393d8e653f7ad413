// The settings tab: numbers (connect by live QR, state, disconnect with confirmation), the
// portal's options, the licence and the console link code. Non-admins see why they cannot.
import { useEffect, useState } from 'preact/hooks';
import { optional, type Api } from '../api';
import type { Host } from '../host';
import type { Lang, T } from '../i18n';
import { LOCALES } from '../i18n';
import { settingsBody } from '../logic';
import { messageOf } from '../panelModel';
import { Stream } from '../stream';
import type { CrmOptions, Licence, PortalSettings, WaNumber } from '../types';

interface Loaded {
  /** The server's word on the caller (the host's flag is only a hint before it answers). */
  admin: boolean;
  numbers: WaNumber[];
  settings: PortalSettings;
  crm: string;
  licence: Licence | null;
  options: CrmOptions | null;
}

export function Settings({ api, host, t, lang }: { api: Api; host: Host; t: T; lang: Lang }) {
  const [d, setD] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<WaNumber | null>(null);
  const [busy, setBusy] = useState(false);
  const locale = LOCALES[lang];
  const admin = d?.admin ?? host.admin;
  // The licence's texts in the CRM's language (the live event's are the server's English).
  const getLicence = () => optional(api.get<Licence>(`/licence?lang=${lang}`)).catch(() => null);

  const load = async () => {
    try {
      const [numbers, s, licence] = await Promise.all([
        api.get<{ items: WaNumber[] }>('/numbers'),
        api.get<{ portal: { crm: string }; user: { admin: boolean }; settings: PortalSettings }>('/settings'),
        getLicence(),
      ]);
      const admin = s.user.admin;
      let options: CrmOptions | null = null;
      if (admin && (s.portal.crm === 'kommo' || s.portal.crm === 'bitrix24')) options = await optional(api.get<CrmOptions>(`/${s.portal.crm}/options`)).catch(() => null);
      setD({ admin, numbers: numbers.items, settings: s.settings, crm: s.portal.crm, licence, options });
      setError(null);
    } catch (err) {
      setError(messageOf(err, t));
    }
  };

  useEffect(() => {
    void load();
    // Live QR codes and states; the licence too.
    let licenceSeq = 0;
    const stream = new Stream(
      api,
      (name, data) => {
        if (name === 'number') {
          const n = data as WaNumber;
          setD((old) => (old ? { ...old, numbers: old.numbers.some((x) => x.id === n.id) ? old.numbers.map((x) => (x.id === n.id ? n : x)) : [...old.numbers, n] } : old));
        } else if (name === 'licence') {
          const seq = ++licenceSeq;
          void getLicence().then((l) => {
            if (seq === licenceSeq) setD((old) => (old ? { ...old, licence: l ?? (data as Licence) } : old));
          });
        }
        else if (name === 'resync') void load();
      },
      () => {},
    );
    stream.start();
    return () => stream.close();
  }, []);
  useEffect(() => {
    host.fitHeight?.();
  });

  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await fn();
      setError(null);
    } catch (err) {
      setError(messageOf(err, t));
    } finally {
      setBusy(false);
    }
  };

  const connect = () =>
    act(async () => {
      const n = await api.post<{ id: number; state: WaNumber['state']; qr: string | null }>('/numbers');
      setD((old) => (old && !old.numbers.some((x) => x.id === n.id) ? { ...old, numbers: [...old.numbers, { id: n.id, phone: null, state: n.state, stateDetail: null, qr: n.qr, lastReadyAt: null }] } : old));
    });

  return (
    <div class="ic settings" data-testid="settings-root" data-ready={d ? 'true' : 'false'}>
      {error && <div class="banner err" role="alert">{error}</div>}
      {!admin && <div class="banner info">{t('settings.readOnly')}</div>}
      {!d ? (
        <div class="center">{error ? '' : t('panel.loading')}</div>
      ) : (
        <>
          <div class="box">
            <h3 class="sec-t">{t('settings.numbers')}</h3>
            {d.numbers.length === 0 && <p class="note">{t('settings.noNumbers')}</p>}
            {d.numbers.map((n) => (
              <NumberRow key={n.id} n={n} t={t} admin={admin} busy={busy} onDisconnect={() => setConfirm(n)} onRestart={() => act(() => api.post(`/numbers/${n.id}/restart`))} />
            ))}
            {admin && (
              <button type="button" class="btn" data-testid="connect-button" disabled={busy} onClick={() => void connect()}>
                {t('settings.connect')}
              </button>
            )}
          </div>
          <Options api={api} t={t} admin={admin} crm={d.crm} settings={d.settings} options={d.options} onError={setError} />
          {d.licence && <LicenceBox l={d.licence} t={t} locale={locale} />}
          {admin && <LinkBox api={api} t={t} locale={locale} />}
        </>
      )}
      {confirm && (
        <div class="modal" role="dialog" aria-modal="true">
          <div>
            <div>{t('settings.confirmDisconnect', { phone: confirm.phone ?? `#${confirm.id}` })}</div>
            <div class="acts">
              <button type="button" class="btn sec" onClick={() => setConfirm(null)}>
                {t('settings.cancel')}
              </button>
              <button
                type="button"
                class="btn danger"
                data-testid="confirm-button"
                onClick={() => {
                  const n = confirm;
                  setConfirm(null);
                  void act(() => api.post(`/numbers/${n.id}/logout`));
                }}
              >
                {t('settings.confirm')}
              </button>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}

function NumberRow({ n, t, admin, busy, onDisconnect, onRestart }: { n: WaNumber; t: T; admin: boolean; busy: boolean; onDisconnect(): void; onRestart(): void }) {
  return (
    <div class="row" data-testid="number-row" data-state={n.state} data-number-id={n.id}>
      <span class="ph">{n.phone ?? t('settings.newNumber')}</span>
      <span class={`st ${n.state}`}>{n.state === 'ready' ? `✓ ${t('settings.connected')}` : t(`state.${n.state}` as 'state.ready')}</span>
      {n.stateDetail && n.state !== 'ready' && <span class="note">{n.stateDetail}</span>}
      <span style="flex:1" />
      {admin && (n.state === 'logged_out' || n.state === 'failed') && (
        <button type="button" class="btn sec" disabled={busy} onClick={onRestart}>
          {t('settings.reconnect')}
        </button>
      )}
      {admin && n.state !== 'logged_out' && (
        <button type="button" class="btn sec" data-testid="disconnect-button" disabled={busy} onClick={onDisconnect}>
          {t('settings.disconnect')}
        </button>
      )}
      {admin && n.state === 'qr' && n.qr && (
        <div class="qr">
          <img data-testid="qr-image" src={n.qr} alt="QR code" width={200} height={200} />
          <p class="note">{t('settings.scan')}</p>
        </div>
      )}
    </div>
  );
}

function Options({ api, t, admin, crm, settings, options, onError }: { api: Api; t: T; admin: boolean; crm: string; settings: PortalSettings; options: CrmOptions | null; onError(e: string | null): void }) {
  const [v, setV] = useState<PortalSettings>(settings);
  const [saved, setSaved] = useState(false);
  const set = (patch: Partial<PortalSettings>) => {
    setV({ ...v, ...patch });
    setSaved(false);
  };
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const body = settingsBody(v, crm, users.length > 0);
      const r = await api.put<{ settings: PortalSettings }>('/settings', body);
      setV(r.settings);
      setSaved(true);
      onError(null);
    } catch (err) {
      onError(messageOf(err, t));
    }
  };
  const pipeline = options?.pipelines.find((p) => p.id === v.pipelineId);
  const ro = !admin;
  const users = options?.users ?? [];
  return (
    <form class="box" data-testid="settings-options" onSubmit={save}>
      <h3 class="sec-t">{t('settings.options')}</h3>
      <div class="form">
        <label for="o-unknown">{t('settings.unknownNumber')}</label>
        <select id="o-unknown" name="unknownNumber" disabled={ro} value={v.unknownNumber ?? 'create'} onChange={(e) => set({ unknownNumber: (e.currentTarget as HTMLSelectElement).value as 'create' | 'ignore' })}>
          <option value="create">{t('settings.unknown.create')}</option>
          <option value="ignore">{t('settings.unknown.ignore')}</option>
        </select>
        {crm !== 'none' && (
          <>
            <label for="o-pipe">{t('settings.pipeline')}</label>
            {options ? (
              <select id="o-pipe" name="pipelineId" disabled={ro} value={v.pipelineId ?? ''} onChange={(e) => set({ pipelineId: (e.currentTarget as HTMLSelectElement).value || undefined, stageId: undefined })}>
                <option value="">{t('settings.any')}</option>
                {options.pipelines.map((p) => (
                  <option value={p.id}>{p.name}</option>
                ))}
              </select>
            ) : (
              <input id="o-pipe" type="text" name="pipelineId" disabled={ro} value={v.pipelineId ?? ''} onInput={(e) => set({ pipelineId: (e.currentTarget as HTMLInputElement).value || undefined })} />
            )}
            <label for="o-stage">{t('settings.stage')}</label>
            {options ? (
              <select id="o-stage" name="stageId" disabled={ro || !pipeline} value={v.stageId ?? ''} onChange={(e) => set({ stageId: (e.currentTarget as HTMLSelectElement).value || undefined })}>
                <option value="">{t('settings.any')}</option>
                {(pipeline?.stages ?? []).map((s) => (
                  <option value={s.id}>{s.name}</option>
                ))}
              </select>
            ) : (
              <input id="o-stage" type="text" name="stageId" disabled={ro} value={v.stageId ?? ''} onInput={(e) => set({ stageId: (e.currentTarget as HTMLInputElement).value || undefined })} />
            )}
            <label for="o-resp">{t('settings.responsible')}</label>
            {options ? (
              <select id="o-resp" name="responsibleUserId" disabled={ro} value={v.responsibleUserId ?? ''} onChange={(e) => set({ responsibleUserId: (e.currentTarget as HTMLSelectElement).value || undefined })}>
                <option value="">{t('settings.any')}</option>
                {users.map((u) => (
                  <option value={u.id}>{u.name}</option>
                ))}
              </select>
            ) : (
              <input id="o-resp" type="text" name="responsibleUserId" disabled={ro} value={v.responsibleUserId ?? ''} onInput={(e) => set({ responsibleUserId: (e.currentTarget as HTMLInputElement).value || undefined })} />
            )}
          </>
        )}
        <label for="o-mirror">{t('settings.mirror')}</label>
        <input id="o-mirror" type="checkbox" name="mirror" disabled={ro} checked={v.mirror !== false} onChange={(e) => set({ mirror: (e.currentTarget as HTMLInputElement).checked })} />
        {users.length > 0 && (
          <>
            <span>{t('settings.alerts')}</span>
            <div class="chk">
              {users.map((u) => (
                <label>
                  <input
                    type="checkbox"
                    disabled={ro}
                    checked={(v.alertUserIds ?? []).includes(u.id)}
                    onChange={(e) => {
                      const on = (e.currentTarget as HTMLInputElement).checked;
                      const cur = (v.alertUserIds ?? []).filter((x) => x !== u.id);
                      set({ alertUserIds: on ? [...cur, u.id] : cur });
                    }}
                  />{' '}
                  {u.name}
                </label>
              ))}
            </div>
          </>
        )}
        {admin && (
          <>
            <span />
            <span>
              <button type="submit" class="btn">
                {t('settings.save')}
              </button>{' '}
              {saved && <span class="note">✓ {t('settings.saved')}</span>}
            </span>
          </>
        )}
      </div>
    </form>
  );
}

function LicenceBox({ l, t, locale }: { l: Licence; t: T; locale: string }) {
  return (
    <div class="box" data-testid="licence-box" data-status={l.status}>
      <h3 class="sec-t">{t('settings.licence')}</h3>
      {l.notice && <div class={`banner ${l.canSend ? 'warn' : 'err'}`}>{l.notice.message}</div>}
      <div class="kv">
        <span class="lbl">{t('settings.status')}</span>
        <span>{t(`licence.${l.status}` as 'licence.active')}</span>
        <span class="lbl">{t('settings.plan')}</span>
        <span>{l.plan?.name ?? '—'}</span>
        <span class="lbl">{t('settings.paidUntil')}</span>
        <span>{l.paidUntil ? new Date(l.paidUntil).toLocaleDateString(locale, { day: 'numeric', month: 'long', year: 'numeric' }) : '—'}</span>
        <span class="lbl">{t('settings.daysLeft')}</span>
        <span>{l.daysLeft ?? '—'}</span>
      </div>
      {l.reason && !l.canSend && <p class="note">{l.reason}</p>}
    </div>
  );
}

function LinkBox({ api, t, locale }: { api: Api; t: T; locale: string }) {
  const [code, setCode] = useState<{ code: string; expiresAt: string } | null>(null);
  const [gone, setGone] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  if (gone) return null;
  const get = async () => {
    try {
      const r = await optional(api.post<{ code: string; expiresAt: string }>('/console/link-code'));
      if (r === null) setGone(true);
      else setCode(r);
    } catch (e) {
      setErr(messageOf(e, t));
    }
  };
  return (
    <div class="box" data-testid="link-box">
      <h3 class="sec-t">{t('settings.link')}</h3>
      <p class="note">{t('settings.linkHelp')}</p>
      {code ? (
        <p>
          <span class="code" data-testid="link-code">{code.code}</span>{' '}
          <span class="note">{t('settings.validUntil', { time: new Date(code.expiresAt).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' }) })}</span>
        </p>
      ) : (
        <button type="button" class="btn sec" onClick={() => void get()}>
          {t('settings.getCode')}
        </button>
      )}
      {err && <p class="err">{err}</p>}
    </div>
  );
}
