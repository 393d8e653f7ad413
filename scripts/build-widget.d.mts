export interface BundleSize {
  file: string;
  raw: number;
  gzip: number;
  budget: number | null;
}
export const BUDGETS: Record<string, number>;
/** Builds dist/widget/{kommo,bitrix24,standalone}.js; returns their sizes. */
export function buildWidget(opts?: { root?: string; outDir?: string }): Promise<BundleSize[]>;
export function sizeTable(rows: BundleSize[]): string;
export function overBudget(rows: BundleSize[]): BundleSize[];
