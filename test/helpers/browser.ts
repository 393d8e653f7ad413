import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** Debian's Chromium, or null. In CI a missing browser is a failure, not a skip. */
export function chromiumPath(): string | null {
  for (const c of CANDIDATES) if (c && fs.existsSync(c)) return c;
  if (process.env.CI) throw new Error('Chromium not found: CI must install Debian chromium (apt-get install chromium) for the browser tests');
  return null;
}

export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium not found');
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', ...extraArgs],
  });
}

export const SCREENSHOTS = 'test/output/screenshots';
