import path from 'node:path';
import type { Config } from '../../config';
import type { WhatsAppEngine } from '../../domain/ports';
import type { Logger } from '../../logger';
import { SimulatorEngine } from './simulator/engine';
import { SimNetwork } from './simulator/network';
import { WwebjsEngine } from './wwebjs/engine';

/** Adding an engine: one folder beside this file and one line here. */
export function createEngine(config: Config, log?: Logger): { engine: WhatsAppEngine; network: SimNetwork | null } {
  switch (config.WA_ENGINE) {
    case 'simulator': {
      const network = new SimNetwork(path.join(config.DATA_DIR, 'simulator'));
      return { engine: new SimulatorEngine(network), network };
    }
    case 'wwebjs':
      return { engine: new WwebjsEngine({ config, log: log?.child({ engine: 'wwebjs' }) }), network: null };
  }
}
