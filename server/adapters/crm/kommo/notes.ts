import { z } from 'zod';
import type { Clock } from '../../../domain/ports';
import { KommoNotAuthorized, KommoRejected, KommoUnavailable, type KommoApi } from './client';
import { id, parse } from './payload';
import type { KommoStore } from './store';

/** The last line of every note we write: how a retry recognises a note Kommo stored without telling us. */
export const noteMarker = (key: string) => `#incrm-${key.replace(':', '')}`;

export function noteText(body: string, key: string): string {
  return `${body}\n${noteMarker(key)}`;
}

const noteCreated = z.object({ _embedded: z.object({ notes: z.array(z.object({ id }).loose()).min(1) }).loose() }).loose();
const noteList = z
  .object({
    _embedded: z.object({ notes: z.array(z.object({ id, params: z.object({ text: z.unknown().optional() }).loose().nullable().optional() }).loose()) }).loose(),
    _links: z.object({ next: z.object({ href: z.string() }).loose().optional() }).loose().optional(),
  })
  .loose();

/** Kommo's clock may be behind ours: look this much earlier than the pending mark. */
const CLOCK_SLACK_S = 600;
/** Pages of 250 notes looked at (newest first) before concluding a pending note was not stored. */
const LOOK_PAGES = 4;

export type NoteTarget = { path: 'leads' | 'contacts'; id: string };

/**
 * Writes one message's note on each record exactly once. Kommo has no duplicate guard for notes
 * (`request_id` is only echoed back), and a POST that answered 5xx or timed out may have been
 * stored anyway; so each note is marked pending before it is sent, carries a marker line, and a
 * pending one is looked up (`GET /api/v4/{type}/{id}/notes`) before it is written again.
 */
export class KommoNotes {
  constructor(private readonly d: { api: KommoApi; store: KommoStore; clock: Clock }) {}

  async write(portalId: number, key: string, text: string, targets: NoteTarget[]): Promise<void> {
    const marks = await this.d.store.notes(portalId, key);
    const body = noteText(text, key);
    // One at a time, each remembered as soon as it is known: a retry after a failure halfway
    // touches only the missing ones.
    for (const t of targets) {
      const mark = marks.get(`${t.path}:${t.id}`);
      if (mark?.noteId) continue;
      if (mark) {
        // A request of ours that timed out may still be creating it: wait for it before looking.
        await this.d.api.settled(portalId);
        const found = await this.find(portalId, t, noteMarker(key), mark.since);
        if (found) {
          await this.d.store.markNote(portalId, key, t.path, t.id, found, this.d.clock.now());
          continue;
        }
      } else {
        await this.d.store.markNotePending(portalId, key, t.path, t.id, this.d.clock.now());
      }
      let res;
      try {
        res = await this.d.api.call(portalId, 'POST', `/api/v4/${t.path}/notes`, [{ entity_id: Number(t.id), note_type: 'common', params: { text: body }, request_id: key }]);
      } catch (err) {
        // Refusals Kommo answers before storing anything: the next try need not look first.
        if (err instanceof KommoRejected || err instanceof KommoNotAuthorized || (err instanceof KommoUnavailable && err.status === 429)) {
          await this.d.store.clearPendingNote(portalId, key, t.path, t.id);
        }
        throw err;
      }
      const noteId = parse(noteCreated, res.data, 'note')._embedded.notes[0]!.id;
      await this.d.store.markNote(portalId, key, t.path, t.id, noteId, this.d.clock.now());
    }
  }

  /** Our note with this marker on the record, stored after `sinceMs` (less clock slack); its id or null. */
  private async find(portalId: number, t: NoteTarget, marker: string, sinceMs: number): Promise<string | null> {
    const from = Math.floor(sinceMs / 1000) - CLOCK_SLACK_S;
    for (let page = 1; page <= LOOK_PAGES; page++) {
      const res = await this.d.api.call(portalId, 'GET', `/api/v4/${t.path}/${t.id}/notes`, {
        filter: { note_type: 'common', updated_at: { from } },
        order: { id: 'desc' },
        limit: 250,
        page,
      });
      if (res.status === 204) return null;
      const list = parse(noteList, res.data, 'notes');
      const hit = list._embedded.notes.find((n) => typeof n.params?.text === 'string' && n.params.text.split('\n').pop() === marker);
      if (hit) return hit.id;
      if (!list._links?.next) return null;
    }
    return null;
  }
}
