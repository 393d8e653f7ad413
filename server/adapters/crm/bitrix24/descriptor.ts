import { z } from 'zod';
import raw from '../../../../manifest/bitrix24/app.json';

// Our own descriptor of the Bitrix24 app (manifest/bitrix24/app.json): scopes, handler paths,
// the card tabs to bind and the events to bind. The install handler reads it; the README next to
// it says what to type into the developer cabinet. Checked once at load, like any other input.
const descriptor = z.object({
  name: z.string(),
  code: z.string(),
  version: z.string(),
  scopes: z.array(z.string()).min(1),
  handlers: z.object({ app: z.string(), install: z.string(), placement: z.string(), events: z.string() }),
  placements: z.array(z.object({ code: z.string().regex(/^[A-Z0-9_]+$/), entity: z.enum(['lead', 'deal', 'contact', 'company']) })).min(1),
  title: z.record(z.string(), z.object({ TITLE: z.string(), DESCRIPTION: z.string() })),
  events: z.array(z.string().regex(/^[A-Z0-9_]+$/)),
});

export type Bitrix24Descriptor = z.infer<typeof descriptor>;
export const BITRIX24_APP: Bitrix24Descriptor = descriptor.parse(raw);

/** Card tab code → the CRM entity type it shows (`CRM_DEAL_DETAIL_TAB` → deal). */
export function entityOfPlacement(code: string | undefined): 'lead' | 'deal' | 'contact' | 'company' | null {
  return BITRIX24_APP.placements.find((p) => p.code === code)?.entity ?? null;
}
