import { z } from 'zod';

// The tariffs live in one versioned file (manifest/plans.json). It is parsed here, at start: a
// bad file stops the server with a message naming the field, like a bad environment variable.

export const LANGS = ['en', 'ru', 'es', 'pt'] as const;
export type Lang = (typeof LANGS)[number];

const planSchema = z
  .object({
    code: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lowercase letters, digits and dashes'),
    names: z.object({ en: z.string().min(1), ru: z.string().min(1), es: z.string().min(1), pt: z.string().min(1) }).strict(),
    priceEur: z.number().nonnegative(),
    periodDays: z.number().int().min(1).max(3660),
    numbers: z.number().int().min(1).max(10_000),
  })
  .strict();

const fileSchema = z
  .object({
    version: z.literal(1),
    plans: z.array(planSchema).min(1),
  })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    for (const [i, p] of f.plans.entries()) {
      if (seen.has(p.code)) ctx.addIssue({ code: 'custom', path: ['plans', i, 'code'], message: `duplicate plan code "${p.code}"` });
      seen.add(p.code);
    }
  });

export type Plan = z.infer<typeof planSchema>;

export class PlanCatalog {
  readonly version: number;
  private readonly byCode: Map<string, Plan>;

  constructor(readonly plans: Plan[], version = 1) {
    this.version = version;
    this.byCode = new Map(plans.map((p) => [p.code, p]));
  }

  get(code: string | null | undefined): Plan | null {
    return code ? this.byCode.get(code) ?? null : null;
  }

  /**
   * A trial may try everything: it gets the number allowance of the largest plan. (Also what
   * lets tests, demos and the bench connect many simulated numbers on a fresh portal.)
   */
  trialNumbers(): number {
    return Math.max(...this.plans.map((p) => p.numbers));
  }
}

/** Parses the JSON of plans.json; throws an Error naming the bad field. */
export function parsePlans(json: unknown): PlanCatalog {
  const r = fileSchema.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new Error(`invalid plans file:\n  ${lines.join('\n  ')}`);
  }
  return new PlanCatalog(r.data.plans, r.data.version);
}

export function planName(plan: Plan, lang: string | null | undefined): string {
  const l = (lang ?? 'en').slice(0, 2).toLowerCase();
  return (LANGS as readonly string[]).includes(l) ? plan.names[l as Lang] : plan.names.en;
}
