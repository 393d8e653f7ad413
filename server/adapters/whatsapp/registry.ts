import path from 'node:path';
import type { Config } from '../../config';
import type { WhatsAppEngine } from '../../domain/ports';
import type { Logger } from '../../logger';
import { SimulatorEngine } from './simulator/engine';
import { SimNetwork } from './simulator/network';

/**
 * Adding an engine: one folder beside this file and one line here. The whatsapp-web.js engine is
 * loaded only when chosen: the library and puppeteer cost ~20 MB of RSS a simulator server
 * does not need.
 */
export async function createEngine(config: Config, log?: Logger): Promise<{ engine: WhatsAppEngine; network: SimNetwork | null }> {
  switch (config.WA_ENGINE) {
    case 'simulator': {
      const network = new SimNetwork(path.join(config.DATA_DIR, 'simulator'));
      return { engine: new SimulatorEngine(network), network };
    }
    case 'wwebjs': {
      const { WwebjsEngine } = await import('./wwebjs/engine');
      return { engine: new WwebjsEngine({ config, log: log?.child({ engine: 'wwebjs' }) }), network: null };
    }
  }
}
