// The composer of one conversation (the panel keys it by the conversation's id): Enter sends,
// Shift+Enter breaks the line; files from the picker, drag-and-drop (handled by the panel, passed
// in) and paste are previewed before sending; the voice recorder. Everything it sends names the
// conversation it was typed, attached or recorded in.
import { useEffect, useRef, useState } from 'preact/hooks';
import { askNotifyPermission } from '../alerts';
import type { T } from '../i18n';
import { formatDuration, formatSize, kindOfFile, recorderMime } from '../logic';
import { ClipIcon, MicIcon, SendIcon, TrashIcon } from './icons';

export interface ComposerProps {
  t: T;
  disabled: string | null;
  /** The conversation this composer writes to. */
  convId: number;
  /** The text typed earlier in this conversation; `onDraft` keeps it while another one is open. */
  draft: string;
  onDraft(text: string): void;
  files: File[];
  setFiles(f: File[]): void;
  onText(convId: number, text: string): void;
  onFiles(convId: number, files: File[], caption: string | null): void;
  onVoice(convId: number, file: File): void;
}

/** After a send the button stays a (disabled) Send this long: a double click never starts the recorder. */
export const SEND_COOLDOWN_MS = 400;

interface Recording {
  convId: number;
  mr: MediaRecorder;
  stream: MediaStream;
  chunks: Blob[];
  cancel: boolean;
  timer: ReturnType<typeof setInterval>;
}

export function Composer({ t, disabled, convId, draft, onDraft, files, setFiles, onText, onFiles, onVoice }: ComposerProps) {
  const [text, setTextState] = useState(draft);
  const [rec, setRec] = useState<{ started: number; now: number } | null>(null);
  const [micError, setMicError] = useState<string | null>(null);
  const [cooling, setCooling] = useState(false);
  const recorder = useRef<Recording | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const alive = useRef(true);
  const sentAt = useRef(0);
  const coolTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const setText = (v: string) => {
    setTextState(v);
    onDraft(v);
  };

  // Leaving the card (or the conversation) while recording throws the recording away: the
  // recorder's onstop sees `cancel` and sends nothing.
  useEffect(
    () => () => {
      alive.current = false;
      if (coolTimer.current) clearTimeout(coolTimer.current);
      const r = recorder.current;
      if (!r) return;
      r.cancel = true;
      clearInterval(r.timer);
      try {
        if (r.mr.state !== 'inactive') r.mr.stop();
      } catch {
        /* already stopped */
      }
      for (const tr of r.stream.getTracks()) tr.stop();
    },
    [],
  );

  if (disabled) return <div class="cmp"><div class="disabled-note" data-testid="composer-disabled">{t('composer.disabled', { reason: disabled })}</div></div>;

  const send = () => {
    if (cooling && !text.trim() && !files.length) return;
    askNotifyPermission();
    const body = text.trim();
    if (files.length) {
      onFiles(convId, files, body || null);
      setFiles([]);
    } else if (body) onText(convId, body);
    else return;
    setText('');
    sentAt.current = Date.now();
    setCooling(true);
    if (coolTimer.current) clearTimeout(coolTimer.current);
    coolTimer.current = setTimeout(() => alive.current && setCooling(false), SEND_COOLDOWN_MS);
    area.current?.focus();
  };

  const startRec = async () => {
    // The second click of a double click on Send lands where the microphone appears: not a recording.
    if (recorder.current || Date.now() - sentAt.current < SEND_COOLDOWN_MS) return;
    setMicError(null);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      if (!alive.current || recorder.current) {
        // Gone (or started twice) while the browser asked for the microphone: release it.
        for (const tr of stream.getTracks()) tr.stop();
        return;
      }
      const mime = recorderMime((m) => typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported(m));
      const mr = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
      const chunks: Blob[] = [];
      const started = Date.now();
      const timer = setInterval(() => setRec({ started, now: Date.now() }), 250);
      // The conversation is fixed when the recording starts.
      recorder.current = { convId, mr, stream, chunks, cancel: false, timer };
      mr.ondataavailable = (e) => e.data.size && chunks.push(e.data);
      mr.onstop = () => {
        const r = recorder.current;
        recorder.current = null;
        if (!r) return;
        clearInterval(r.timer);
        for (const tr of r.stream.getTracks()) tr.stop();
        setRec(null);
        if (r.cancel || !chunks.length) return;
        const type = (mr.mimeType || mime || 'audio/webm').split(';')[0]!;
        const full = mr.mimeType || mime || type;
        onVoice(r.convId, new File(chunks, type.includes('ogg') ? 'voice.ogg' : 'voice.webm', { type: full.includes('opus') ? full : type }));
      };
      mr.start(250);
      setRec({ started, now: started });
    } catch (err) {
      setMicError(err instanceof Error ? err.message : String(err));
    }
  };

  const finishRec = (cancel: boolean) => {
    const r = recorder.current;
    if (!r) return;
    r.cancel = cancel;
    if (r.mr.state !== 'inactive') r.mr.stop();
  };

  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const pasted = Array.from(e.clipboardData?.files ?? []);
    if (pasted.length) {
      e.preventDefault();
      setFiles([...files, ...pasted]);
    }
  };

  return (
    <>
      {files.length > 0 && (
        <div class="prev" data-testid="attach-preview">
          {files.map((f, i) => (
            <Preview key={i} f={f} t={t} onRemove={() => setFiles(files.filter((_, j) => j !== i))} />
          ))}
        </div>
      )}
      {micError && <div class="banner err">{t('composer.micDenied', { reason: micError })}</div>}
      <div class="cmp">
        {rec ? (
          <>
            <button type="button" class="ib" data-testid="record-cancel" title={t('composer.cancel')} aria-label={t('composer.cancel')} onClick={() => finishRec(true)}>
              <TrashIcon />
            </button>
            <div class="recbar">
              <span class="dot" />
              <span data-testid="record-timer">{formatDuration(rec.now - rec.started)}</span>
            </div>
            <button type="button" class="ib go" data-testid="record-stop" title={t('composer.stop')} aria-label={t('composer.stop')} onClick={() => finishRec(false)}>
              <SendIcon />
            </button>
          </>
        ) : (
          <>
            <label class="ib" title={t('composer.attach')}>
              <ClipIcon />
              <input
                class="file-in"
                type="file"
                multiple
                data-testid="attach-input"
                aria-label={t('composer.attach')}
                onChange={(e) => {
                  const input = e.currentTarget as HTMLInputElement;
                  setFiles([...files, ...(input.files ? Array.from(input.files) : [])]);
                  input.value = '';
                }}
              />
            </label>
            <textarea
              ref={area}
              rows={1}
              data-testid="composer-input"
              placeholder={t('composer.placeholder')}
              aria-label={t('composer.placeholder')}
              value={text}
              onInput={(e) => {
                const el = e.currentTarget as HTMLTextAreaElement;
                setText(el.value);
                el.style.height = 'auto';
                el.style.height = `${Math.min(el.scrollHeight, 120)}px`;
              }}
              onKeyDown={onKey}
              onPaste={onPaste}
            />
            {text.trim() || files.length || cooling ? (
              <button type="button" class="ib go" data-testid="send-button" title={t('composer.send')} aria-label={t('composer.send')} disabled={!text.trim() && !files.length} onClick={send}>
                <SendIcon />
              </button>
            ) : (
              <button type="button" class="ib" data-testid="record-button" title={t('composer.record')} aria-label={t('composer.record')} onClick={() => void startRec()}>
                <MicIcon />
              </button>
            )}
          </>
        )}
      </div>
    </>
  );
}

function Preview({ f, t, onRemove }: { f: File; t: T; onRemove(): void }) {
  const [url, setUrl] = useState('');
  useEffect(() => {
    const u = URL.createObjectURL(f);
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [f]);
  const kind = kindOfFile(f.type);
  return (
    <div class="pv" data-kind={kind}>
      {kind === 'image' && url && <img src={url} alt={f.name} />}
      {kind === 'video' && url && <video src={url} muted />}
      {(kind === 'document' || kind === 'audio') && <div class="doc"><span class="ico">{(f.name.split('.').pop() ?? '').slice(0, 4).toUpperCase()}</span></div>}
      <span class="pn" title={f.name}>{f.name}</span>
      <span class="lbl">{formatSize(f.size)}</span>
      <button type="button" class="x" title={t('composer.remove')} aria-label={t('composer.remove')} onClick={onRemove}>
        ×
      </button>
    </div>
  );
}
