import { expect } from 'chai';
import { DICTS, pickLang, translator } from '../../widget/src/i18n';
import { mergeStatus, normalisePhone, Outbox, recorderMime, relativeDay, settingsBody, tickFor, upsertMessages, withDaySeparators, type Draft, type SendResult } from '../../widget/src/logic';
import type { MessageStatus, Msg } from '../../widget/src/types';

// The widget's pure logic, run in Node: ticks, forward-only statuses, day separators, the
// idempotency key of a message across retries, and the four dictionaries.

const msg = (id: number, createdAt: string, status: MessageStatus = 'sent'): Msg => ({ id, conversationId: 1, direction: 'out', type: 'text', text: `m${id}`, status, createdAt });

describe('widget logic', () => {
  describe('status ticks', () => {
    it('maps each status to WhatsApp’s tick: clock, ✓, ✓✓, blue ✓✓, played, failed', () => {
      expect(tickFor('out', 'queued')).to.deep.equal({ glyph: 'clock', blue: false, label: 'status.queued' });
      expect(tickFor('out', 'sent')).to.deep.equal({ glyph: 'single', blue: false, label: 'status.sent' });
      expect(tickFor('out', 'delivered')).to.deep.equal({ glyph: 'double', blue: false, label: 'status.delivered' });
      expect(tickFor('out', 'read')).to.deep.equal({ glyph: 'double', blue: true, label: 'status.read' });
      expect(tickFor('out', 'played')).to.deep.equal({ glyph: 'double', blue: true, label: 'status.played' });
      expect(tickFor('out', 'failed')).to.deep.equal({ glyph: 'error', blue: false, label: 'status.failed' });
      expect(tickFor('in', 'read').glyph).to.equal('none');
    });

    it('moves statuses forward only; failed only from queued or sent; a retry leaves failed', () => {
      expect(mergeStatus('read', 'delivered')).to.equal('read');
      expect(mergeStatus('sent', 'read')).to.equal('read');
      expect(mergeStatus('read', 'played')).to.equal('played');
      expect(mergeStatus('queued', 'failed')).to.equal('failed');
      expect(mergeStatus('sent', 'failed')).to.equal('failed');
      expect(mergeStatus('delivered', 'failed')).to.equal('delivered');
      expect(mergeStatus('failed', 'queued')).to.equal('queued');
    });

    it('keeps the most advanced status when a message comes twice, optimistic ones last', () => {
      const list = upsertMessages([msg(2, '2026-01-01T10:00:00Z', 'read'), { ...msg(-1, '2026-01-01T10:01:00Z', 'queued'), key: 'k' }], [msg(2, '2026-01-01T10:00:00Z', 'delivered'), msg(1, '2026-01-01T09:00:00Z')]);
      expect(list.map((m) => m.id)).to.deep.equal([1, 2, -1]);
      expect(list[1]!.status).to.equal('read');
      expect(upsertMessages([], [msg(-1, 'x'), msg(-2, 'x')]).map((m) => m.id)).to.deep.equal([-1, -2]);
      // A POST answer (queued) arriving after the stream said failed does not hide the failure;
      // the retry's own answer does move it back to queued.
      const failed = [{ ...msg(5, 'x', 'failed'), error: 'not on WhatsApp' }];
      expect(upsertMessages(failed, [msg(5, 'x', 'queued')])[0]).to.include({ status: 'failed', error: 'not on WhatsApp' });
      expect(upsertMessages(failed, [msg(5, 'x', 'queued')], true)[0]!.status).to.equal('queued');
    });
  });

  describe('day separators', () => {
    it('puts one separator before each new local day, labelled today / yesterday / a date', () => {
      const now = new Date(2026, 4, 20, 15, 0);
      const at = (d: number, h: number) => new Date(2026, 4, d, h, 0).toISOString();
      const rows = withDaySeparators([msg(1, at(10, 9)), msg(2, at(10, 23)), msg(3, at(19, 8)), msg(4, at(20, 0)), msg(5, at(20, 14))], (iso, n) => relativeDay(iso, n) ?? iso.slice(0, 10), now);
      expect(rows.map((r) => (r.kind === 'day' ? `[${r.label}]` : r.msg.id))).to.deep.equal([`[${at(10, 9).slice(0, 10)}]`, 1, 2, '[yesterday]', 3, '[today]', 4, 5]);
    });
  });

  describe('idempotent sending', () => {
    it('sends a message with one key; Retry and a double click reuse it, never a second key', async () => {
      const seen: string[] = [];
      let fail = true;
      let keys = 0;
      const outbox = new Outbox(
        async (_d: Draft, key: string): Promise<SendResult> => {
          seen.push(key);
          await new Promise((r) => setTimeout(r, 5));
          if (fail) return { ok: false, status: 0, code: 'network', message: 'offline' };
          return { ok: true, message: msg(7, '2026-01-01T00:00:00Z') };
        },
        () => `key-${++keys}`,
      );
      const { key, done } = outbox.send({ conversationId: 1, text: 'hi' });
      expect((await done).ok).to.equal(false);
      expect(outbox.has(key)).to.equal(true);
      fail = false;
      // Two clicks on Retry while the first is in flight: one request, one outcome.
      const [a, b] = await Promise.all([outbox.attempt(key), outbox.attempt(key)]);
      expect(a).to.equal(b);
      expect(a.ok).to.equal(true);
      expect(seen).to.deep.equal(['key-1', 'key-1']);
      expect(outbox.has(key)).to.equal(false);
      // The next message gets a new key.
      expect(outbox.send({ conversationId: 1, text: 'again' }).key).to.equal('key-2');
    });
  });

  describe('i18n', () => {
    it('has every key in en, ru, es and pt, non-empty, with the same placeholders', () => {
      const keys = Object.keys(DICTS.en).sort();
      for (const lang of ['ru', 'es', 'pt'] as const) {
        expect(Object.keys(DICTS[lang]).sort(), lang).to.deep.equal(keys);
        for (const k of keys) {
          const v = (DICTS[lang] as Record<string, string>)[k]!;
          expect(v.trim(), `${lang} ${k}`).to.not.equal('');
          const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
          expect(ph(v), `${lang} ${k}`).to.deep.equal(ph((DICTS.en as Record<string, string>)[k]!));
        }
      }
    });

    it('follows the CRM’s language codes and fills placeholders', () => {
      expect(pickLang('ru')).to.equal('ru');
      expect(pickLang('pt_BR')).to.equal('pt');
      expect(pickLang('br')).to.equal('pt');
      expect(pickLang('es-ES')).to.equal('es');
      expect(pickLang('de')).to.equal('en');
      expect(pickLang(undefined)).to.equal('en');
      expect(translator('ru')('banner.licenceExpiring', { days: 3 })).to.equal('Лицензия InCRM закончится через 3 дн.');
    });
  });

  describe('settings form', () => {
    it('sends an emptied option as null (unset), an empty alert list as null (the default), and leaves out what the form does not show', () => {
      expect(settingsBody({ unknownNumber: 'create', mirror: true, pipelineId: '7', stageId: '', responsibleUserId: undefined, alertUserIds: [] }, 'kommo', true)).to.deep.equal({
        unknownNumber: 'create',
        mirror: true,
        pipelineId: '7',
        stageId: null,
        responsibleUserId: null,
        alertUserIds: null,
      });
      expect(settingsBody({ pipelineId: '7', stageId: '8', responsibleUserId: '501', alertUserIds: ['501'] }, 'kommo', true)).to.deep.equal({ pipelineId: '7', stageId: '8', responsibleUserId: '501', alertUserIds: ['501'] });
      // No CRM: no pipeline fields; no user list to tick (CRM unreachable): the recipients stay.
      expect(settingsBody({ mirror: false, alertUserIds: [] }, 'none', false)).to.deep.equal({ mirror: false });
    });
  });

  describe('small helpers', () => {
    it('records Ogg/Opus where supported, else WebM/Opus', () => {
      expect(recorderMime((m) => m.startsWith('audio/ogg'))).to.equal('audio/ogg;codecs=opus');
      expect(recorderMime((m) => m.startsWith('audio/webm'))).to.equal('audio/webm;codecs=opus');
      expect(recorderMime(() => false)).to.equal('');
    });
    it('takes a typed phone as + and digits', () => {
      expect(normalisePhone('+1 (555) 000-0002')).to.equal('+15550000002');
      expect(normalisePhone('12')).to.equal(null);
    });
  });
});
