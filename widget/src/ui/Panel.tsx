// The chat panel of a card: the card's phones and conversations, the writing number, banners,
// the message list with day separators and scroll-back, and the composer.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Lang, T } from '../i18n';
import { LOCALES } from '../i18n';
import { normalisePhone, relativeDay, withDaySeparators } from '../logic';
import type { PanelModel, PanelState } from '../panelModel';
import type { Conv, WaNumber } from '../types';
import { Composer } from './Composer';
import { MessageView } from './Message';

export function Panel({ model, t, lang }: { model: PanelModel; t: T; lang: Lang }) {
  const [s, setS] = useState<PanelState>(model.state);
  // Drafts per conversation: attachments (state: drop adds to them) and typed text (a ref: no
  // panel render per keystroke). Switching phones shows that phone's draft, never another's.
  const [files, setFiles] = useState<Record<number, File[]>>({});
  const texts = useRef(new Map<number, string>());
  const [dragging, setDragging] = useState(false);
  // dragenter/dragleave fire for every child crossed: the overlay goes when the count is back to 0.
  const drags = useRef(0);
  const [zoom, setZoom] = useState<string | null>(null);
  useEffect(() => {
    const off = model.subscribe(() => setS(model.state));
    setS(model.state);
    return off;
  }, [model]);
  useEffect(() => {
    model.host.fitHeight?.();
  });

  const locale = LOCALES[lang];
  const active = s.convs.find((c) => c.id === s.activeId) ?? null;
  const writing = model.writingNumberId();
  const number = s.numbers.find((n) => n.id === writing) ?? null;
  const disabled = s.licence && !s.licence.canSend ? s.licence.notice?.message ?? s.licence.reason ?? t('banner.licenceExpired') : s.blocked;
  const setFilesOf = (id: number) => (f: File[]) => setFiles((old) => ({ ...old, [id]: f }));

  // A drag that ends anywhere (dropped elsewhere, Esc, left the window) takes the overlay with it.
  useEffect(() => {
    const reset = () => {
      drags.current = 0;
      setDragging(false);
    };
    window.addEventListener('dragend', reset, true);
    window.addEventListener('drop', reset, true);
    return () => {
      window.removeEventListener('dragend', reset, true);
      window.removeEventListener('drop', reset, true);
    };
  }, []);

  const hasFiles = (e: DragEvent) => !!e.dataTransfer?.types.includes('Files');
  const drop = (e: DragEvent) => {
    e.preventDefault();
    drags.current = 0;
    setDragging(false);
    const dropped = Array.from(e.dataTransfer?.files ?? []);
    if (dropped.length && !disabled && active) setFiles((old) => ({ ...old, [active.id]: [...(old[active.id] ?? []), ...dropped] }));
  };

  return (
    <div
      class="ic panel"
      data-testid="panel-root"
      data-ready={s.ready ? 'true' : 'false'}
      onDragEnter={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        drags.current++;
        setDragging(true);
      }}
      onDragOver={(e) => {
        if (hasFiles(e)) e.preventDefault();
      }}
      onDragLeave={(e) => {
        if (!hasFiles(e) || drags.current === 0) return;
        if (--drags.current === 0) setDragging(false);
      }}
      onDrop={drop}
    >
      <Header s={s} t={t} model={model} active={active} writing={writing} />
      <Banners s={s} t={t} model={model} number={number} />
      {s.notice && (
        <div class="banner err" role="alert">
          {s.notice}
          <button type="button" class="lnk" onClick={() => model.dismissNotice()}>
            ×
          </button>
        </div>
      )}
      {!s.ready ? (
        <div class="center">{t('panel.loading')}</div>
      ) : s.error ? (
        <div class="center">{s.error}</div>
      ) : active ? (
        <Thread model={model} s={s} t={t} locale={locale} conv={active} onZoom={setZoom} />
      ) : (
        <div class="center">{s.numbers.length === 0 ? t('panel.noNumbers') : s.phones.length === 0 ? t('panel.noPhones') : t('panel.pickConversation')}</div>
      )}
      {s.ready && active && (
        <Composer
          key={active.id}
          t={t}
          disabled={disabled}
          convId={active.id}
          draft={texts.current.get(active.id) ?? ''}
          onDraft={(x) => (x ? texts.current.set(active.id, x) : texts.current.delete(active.id))}
          files={files[active.id] ?? []}
          setFiles={setFilesOf(active.id)}
          onText={(id, x) => model.sendText(id, x)}
          onFiles={(id, fs, caption) => fs.forEach((f, i) => model.sendFile(id, f, i === 0 ? caption : null))}
          onVoice={(id, f) => model.sendFile(id, f, null, true)}
        />
      )}
      {dragging && <div class="drop">{t('composer.dropHere')}</div>}
      {zoom && (
        <div class="full" onClick={() => setZoom(null)}>
          <img src={zoom} alt="" />
          <button type="button">{t('msg.close')}</button>
        </div>
      )}
    </div>
  );
}

function Header({ s, t, model, active, writing }: { s: PanelState; t: T; model: PanelModel; active: Conv | null; writing: number | null }) {
  const [typed, setTyped] = useState('');
  const [bad, setBad] = useState(false);
  const multi = new Set(s.convs.map((c) => c.numberId)).size > 1 || s.numbers.length > 1;
  // The card's phones without a conversation yet are listed too: a click starts one.
  const bare = s.phones.filter((p) => !s.convs.some((c) => c.phone === p));
  const start = (e: Event) => {
    e.preventDefault();
    const phone = normalisePhone(typed);
    if (!phone) return setBad(true);
    setBad(false);
    setTyped('');
    void model.openPhone(phone);
  };
  const numberLabel = (n: WaNumber) => `${n.phone ?? `#${n.id}`} · ${t(`state.${n.state}` as 'state.ready')}`;
  return (
    <div class="hdr">
      <div class="convs" data-testid="conversation-list" role="tablist">
        {s.convs.map((c) => (
          <button
            type="button"
            role="tab"
            aria-selected={c.id === s.activeId}
            class={`conv${c.id === s.activeId ? ' on' : ''}`}
            data-testid="conversation-item"
            data-phone={c.phone ?? ''}
            data-conversation-id={c.id}
            data-unread={c.unreadCount}
            onClick={() => void model.select(c.id)}
            title={c.name ?? c.phone ?? c.waId}
          >
            <span class="nm">{c.name ? `${c.name} ` : ''}{c.phone ?? c.waId}</span>
            {multi && c.numberPhone && <span class="sub">→{c.numberPhone.slice(-4)}</span>}
            {c.unreadCount > 0 && <span class="badge">{c.unreadCount}</span>}
          </button>
        ))}
        {bare.map((p) => (
          <button type="button" role="tab" class="conv" data-testid="conversation-item" data-phone={p} data-unread={0} title={t('panel.noConversation')} onClick={() => void model.openPhone(p)}>
            <span class="nm">{p}</span>
          </button>
        ))}
      </div>
      {s.numbers.length > 1 && (
        <label class="lbl">
          {t('panel.writeFrom')}{' '}
          <select class="sel" data-testid="number-select" value={String(writing ?? '')} onChange={(e) => void model.chooseNumber(Number((e.currentTarget as HTMLSelectElement).value))}>
            {s.numbers
              .filter((n) => n.state !== 'logged_out' || n.id === writing)
              .map((n) => (
                <option value={String(n.id)}>{numberLabel(n)}</option>
              ))}
          </select>
        </label>
      )}
      <form class="newc" onSubmit={start}>
        <input
          data-testid="new-conversation-input"
          type="tel"
          placeholder="+1 555 000 0000"
          aria-label={t('panel.newConversation')}
          title={bad ? t('panel.badPhone') : t('panel.newConversation')}
          style={bad ? 'border-color:#ea0038' : undefined}
          value={typed}
          onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit">{t('panel.start')}</button>
      </form>
    </div>
  );
}

function Banners({ s, t, model, number }: { s: PanelState; t: T; model: PanelModel; number: WaNumber | null }) {
  const out = [];
  const phone = number?.phone ?? (number ? `#${number.id}` : '');
  if (number && number.state === 'offline') out.push(<div class="banner warn" data-testid="banner" data-kind="number-offline">{t('banner.offline', { phone })}</div>);
  if (number && (number.state === 'logged_out' || number.state === 'failed' || number.state === 'qr'))
    out.push(
      <div class="banner err" data-testid="banner" data-kind="logged-out">
        {model.host.admin ? t('banner.loggedOut', { phone }) : t('banner.loggedOutUser', { phone })}
        {model.host.admin && model.host.openSettings && (
          <button type="button" class="lnk" onClick={() => model.host.openSettings!()}>
            {t('banner.openSettings')}
          </button>
        )}
      </div>,
    );
  const lic = s.licence;
  let licText: string | null = null;
  let licErr = false;
  // The licence's own texts come in the CRM's language (GET /licence?lang=); a refusal's is ours.
  if (lic && !lic.canSend) [licText, licErr] = [lic.notice?.message ?? lic.reason ?? t(lic.status === 'suspended' ? 'banner.licenceSuspended' : 'banner.licenceExpired'), true];
  else if (s.blocked) [licText, licErr] = [s.blocked, true];
  else if (lic?.notice) licText = lic.notice.message;
  else if (lic && lic.daysLeft !== null && lic.daysLeft <= 7) licText = t('banner.licenceExpiring', { days: lic.daysLeft });
  if (licText)
    out.push(
      <div class={`banner ${licErr ? 'err' : 'warn'}`} data-testid="banner" data-kind="licence">
        {licText}
      </div>,
    );
  if (!s.live) out.push(<div class="banner info" data-testid="banner" data-kind="reconnecting">{t('banner.reconnecting')}</div>);
  return <>{out}</>;
}

function Thread({ model, s, t, locale, conv, onZoom }: { model: PanelModel; s: PanelState; t: T; locale: string; conv: Conv; onZoom(u: string): void }) {
  const box = useRef<HTMLDivElement>(null);
  const th = s.threads[conv.id];
  const items = th?.items ?? [];
  const stick = useRef(true);
  const prevHeight = useRef<number | null>(null);
  const lastConv = useRef<number | null>(null);
  const rows = useMemo(
    () =>
      withDaySeparators(items, (iso, now) => {
        const r = relativeDay(iso, now);
        if (r) return t(r === 'today' ? 'day.today' : 'day.yesterday');
        return new Date(iso).toLocaleDateString(locale, { day: 'numeric', month: 'long', year: new Date(iso).getFullYear() === now.getFullYear() ? undefined : 'numeric' });
      }),
    [items, t, locale],
  );

  // Keep the view at the bottom for new messages (unless the user scrolled up), and keep the
  // visible message in place when an older page is prepended above it.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (lastConv.current !== conv.id) {
      lastConv.current = conv.id;
      stick.current = true;
    }
    if (prevHeight.current !== null) {
      el.scrollTop += el.scrollHeight - prevHeight.current;
      prevHeight.current = null;
    } else if (stick.current) el.scrollTop = el.scrollHeight;
  }, [rows, conv.id]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 60 && th?.cursor && !th.loading) {
      prevHeight.current = el.scrollHeight;
      void model.loadOlder().then((added) => {
        if (!added) prevHeight.current = null;
      });
    }
  };

  return (
    <div class="msgs" ref={box} onScroll={onScroll}>
      {th?.loading && th.loaded && <div class="older">{t('panel.loadingOlder')}</div>}
      {th?.loaded && items.length === 0 && <div class="empty">{t('panel.noMessages')}</div>}
      {rows.map((r) =>
        r.kind === 'day' ? (
          <div class="day" key={r.key}>
            {r.label}
          </div>
        ) : (
          <MessageView key={r.key} m={r.msg} t={t} locale={locale} base={model.api.base} onRetry={(m) => void model.retry(m)} onZoom={onZoom} />
        ),
      )}
    </div>
  );
}
