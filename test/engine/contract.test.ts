// The engine contract, run against the simulator and against the whatsapp-web.js adapter.
import fs from 'node:fs';
import path from 'node:path';
import { SimulatorEngine } from '../../server/adapters/whatsapp/simulator/engine';
import { SimNetwork } from '../../server/adapters/whatsapp/simulator/network';
import { engineContract } from './contract';
import { standInEngine, StandInWorld } from './standin';

engineContract('simulator', () => {
  const net = new SimNetwork(null);
  const engine = new SimulatorEngine(net);
  return {
    engine,
    scan: (id, phone) => net.link(id, phone),
    inbound: (id, m) => net.inbound({ to: net.accountOf(id)!.phone, from: m.from, text: m.text, repeat: m.repeat }).waMessageId,
    ack: (id, waId, status) => net.injectAck(id, waId, status),
    delivered: (phone) => net.deliveredTo(phone),
    setRegistered: (phone, registered) => void net.setPhone(phone, { registered }),
    goOffline: (id) => net.setAccountOnline(id, false),
    goOnline: (id) => net.setAccountOnline(id, true),
    unlinkFromPhone: (id) => net.unlink(id),
    isLinked: (id) => net.accountOf(id) !== null,
    close: async () => net.close(),
  };
});

engineContract('wwebjs adapter with the stand-in Client', () => {
  const world = new StandInWorld();
  const { engine, profileOf } = standInEngine(world);
  return {
    engine,
    scan: (id, phone) => world.scan(id, phone),
    inbound: (id, m) => world.inbound(id, m),
    ack: (id, waId, status) => world.ack(id, waId, status),
    delivered: (phone) => world.delivered.get(phone) ?? [],
    setRegistered: (phone, registered) => void world.registered.set(phone, registered),
    goOffline: (id) => world.goOffline(id),
    goOnline: (id) => world.goOnline(id),
    unlinkFromPhone: (id) => world.unlink(id),
    isLinked: (id) => world.links.has(id) && fs.existsSync(path.join(profileOf(id), 'Default', 'stand-in-login.json')),
    close: () => engine.shutdown(),
  };
});
