/** Packs dist/kommo-widget.zip (see kommo-widget.mjs); returns the archive's entry names. */
export function packKommoWidget(opts?: { root?: string; out?: string; server?: string; requireBundle?: boolean }): Promise<string[]>;
