// One message bubble: text, media (inline image with a full view, players, document card,
// "media unavailable"), time, ticks, failure reason with Retry.
import { useState } from 'preact/hooks';
import type { T } from '../i18n';
import { formatSize, tickFor } from '../logic';
import { typeLabel } from '../panelModel';
import type { Msg } from '../types';
import { TickIcon } from './icons';

export interface MessageProps {
  m: Msg;
  t: T;
  locale: string;
  base: string;
  onRetry(m: Msg): void;
  onZoom(url: string): void;
}

const abs = (base: string, url: string) => (url.startsWith('/') ? base + url : url);

export function MessageView({ m, t, locale, base, onRetry, onZoom }: MessageProps) {
  const [broken, setBroken] = useState(false);
  const tick = tickFor(m.direction, m.status);
  const time = new Date(m.createdAt).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
  const url = m.localUrl ?? (m.media?.url ? abs(base, m.media.url) : '');
  const hasMediaType = m.type !== 'text' && m.type !== 'location' && m.type !== 'other';
  const kind = m.type === 'sticker' ? 'image' : m.type;
  let body = null;
  if (m.revoked) body = <div class="gone">{t('msg.revoked')}</div>;
  else if (hasMediaType && (!url || broken)) body = <div class="gone">{t('msg.mediaUnavailable')}</div>;
  else if (kind === 'image') body = <img src={url} alt={m.media?.filename ?? t('msg.image')} loading="lazy" onError={() => setBroken(true)} onClick={() => onZoom(url)} />;
  else if (kind === 'video') body = <video src={url} controls preload="metadata" onError={() => setBroken(true)} />;
  // `metadata`, not `none`: the player shows the length, and a file that is gone fires `error`.
  else if (kind === 'audio' || kind === 'voice') body = <audio src={url} controls preload="metadata" aria-label={t(typeLabel(m.type))} onError={() => setBroken(true)} />;
  else if (kind === 'document')
    body = (
      <a class="doc" href={url} target="_blank" rel="noopener" download={m.media?.filename ?? ''} onClick={(e) => openDocument(e, url, m.media?.filename ?? null, () => setBroken(true))}>
        <span class="ico">{extOf(m.media?.filename, m.media?.mimetype)}</span>
        <span>
          <div class="dn">{m.media?.filename ?? t('msg.document')}</div>
          <div class="lbl">{m.media ? formatSize(m.media.size) : ''}</div>
        </span>
      </a>
    );
  else if (m.type !== 'text' && !m.text) body = <div class="gone">{t('msg.other')}</div>;
  return (
    <div class={`m ${m.direction}${m.status === 'failed' ? ' failed' : ''}`} data-testid="message" data-status={m.status} data-direction={m.direction} data-type={m.type} data-id={m.id > 0 ? m.id : undefined}>
      {body && <div class="media">{body}</div>}
      {m.text && !m.revoked && (
        <span class="txt" data-testid="message-text">
          {m.text}
        </span>
      )}
      <span class="meta">
        {time}
        {tick.glyph !== 'none' && (
          <span class={`tick${tick.blue ? ' blue' : ''}${tick.glyph === 'error' ? ' err' : ''}`} title={t(tick.label as 'status.sent')} aria-label={t(tick.label as 'status.sent')}>
            <TickIcon glyph={tick.glyph} />
          </span>
        )}
        {m.status === 'played' && <span class="played">▶</span>}
      </span>
      {m.status === 'failed' && m.direction === 'out' && (
        <div class="err">
          {m.error || t('status.failed')}
          <button type="button" data-testid="retry-button" onClick={() => onRetry(m)}>
            {t('msg.retry')}
          </button>
        </div>
      )}
    </div>
  );
}

/**
 * A document is fetched before it is handed to the browser: a file that is gone shows "media
 * unavailable" instead of a broken download. Where the fetch cannot tell (another origin without
 * CORS, no network) the link opens as before.
 */
function openDocument(e: MouseEvent, url: string, filename: string | null, gone: () => void): void {
  if (url.startsWith('blob:') || typeof fetch === 'undefined') return;
  e.preventDefault();
  const box = (e.currentTarget as HTMLElement).parentNode;
  void (async () => {
    let blob: Blob;
    try {
      const res = await fetch(url);
      if (!res.ok) return gone();
      blob = await res.blob();
    } catch {
      window.open(url, '_blank', 'noopener');
      return;
    }
    const local = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = local;
    a.download = filename ?? '';
    a.style.display = 'none';
    box?.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(local), 60_000);
  })();
}

function extOf(name: string | null | undefined, mime: string | undefined): string {
  const e = name?.includes('.') ? name.split('.').pop()! : (mime?.split('/')[1] ?? 'file');
  return e.slice(0, 4).toUpperCase();
}
