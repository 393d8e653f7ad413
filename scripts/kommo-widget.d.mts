/** Packs dist/kommo-widget.zip (see kommo-widget.mjs); returns the archive's entry names. */
export function packKommoWidget(opts?: {
  root?: string;
  out?: string;
  /** Server address written into script.js (default PUBLIC_URL). */
  server?: string;
  /** Fail when the app bundle is missing. */
  requireBundle?: boolean;
  /** The app bundle to include as widget/kommo.js (default dist/widget/kommo.js). */
  app?: string;
}): Promise<string[]>;
