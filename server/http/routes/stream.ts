import { z } from 'zod';
import type { MediaStore } from '../../domain/ports';
import { route, type RouteDef } from '../api';
import type { LiveHub, StoredEvent } from '../liveHub';
import { presentEvent } from '../present';

const HEARTBEAT_MS = 15_000;

/**
 * `openStreams` collects the open SSE responses so shutdown can end them (they never finish on
 * their own).
 */
export function streamRoutes(hub: LiveHub, media: MediaStore, openStreams: Set<{ end(): void }>): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/stream',
      tag: 'stream',
      summary:
        "Server-Sent Events of the caller's portal: message, status, conversation, number (with QR). Resumable with Last-Event-ID; `resync` means reload state.",
      access: 'user',
      query: z.object({ access_token: z.string().optional(), lastEventId: z.string().optional() }),
      responses: { '200': 'text/event-stream', '401': 'no or bad token' },
      handler: async ({ req, res, principal, query }) => {
        res.writeHead(200, {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache, no-transform',
          Connection: 'keep-alive',
          'X-Accel-Buffering': 'no',
        });
        res.socket?.setNoDelay(true);
        const write = (e: StoredEvent) => {
          const { name, data } = presentEvent(e.event, media);
          res.write(`id: ${e.id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
        };
        res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ portalId: principal.portalId, boot: hub.boot })}\n\n`);
        const last = req.header('last-event-id') ?? query.lastEventId;
        // Subscribe before replaying so nothing published in between is lost.
        const queued: StoredEvent[] = [];
        let replaying = true;
        const unsubscribe = hub.subscribe(principal.portalId, (e) => (replaying ? queued.push(e) : write(e)));
        let lastSeq = 0;
        if (last) {
          const missed = hub.since(principal.portalId, last);
          if (missed === null) res.write(`event: resync\ndata: {}\n\n`);
          else for (const e of missed) {
            write(e);
            lastSeq = e.seq;
          }
        }
        for (const e of queued) if (e.seq > lastSeq) write(e);
        replaying = false;
        const beat = setInterval(() => res.write(`: ping\n\n`), HEARTBEAT_MS);
        const handle = { end: () => res.end() };
        openStreams.add(handle);
        await new Promise<void>((resolve) => res.on('close', resolve));
        clearInterval(beat);
        unsubscribe();
        openStreams.delete(handle);
        return undefined;
      },
    }),
  ];
}
