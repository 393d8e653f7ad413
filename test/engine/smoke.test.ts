// scripts/smoke-whatsapp.ts, driven by the stand-in Client instead of a real phone.
import { expect } from 'chai';
import { runSmoke } from '../../scripts/smoke-whatsapp';
import { standInEngine, StandInWorld } from './standin';

const ME = '+15550001000';
const TO = '+15550002000';

describe('smoke script (stand-in Client)', function () {
  this.timeout(15_000);

  async function smoke(world: StandInWorld) {
    const { engine } = standInEngine(world);
    const lines: string[] = [];
    try {
      const result = await runSmoke({
        engine,
        to: TO,
        waitSeconds: 0.3,
        voice: Buffer.from('OggS'),
        log: (...parts) => lines.push(parts.map(String).join(' ')),
        showQr: () => void setTimeout(() => world.scan(1, ME), 10),
      });
      return { ...result, lines };
    } finally {
      await engine.shutdown();
    }
  }

  it('labels acks that fired before the send returned with the message they belong to', async () => {
    const world = new StandInWorld();
    world.sendDelayMs = 30; // the first ack comes while sendMessage is still running
    const { lines, acks, sendError } = await smoke(world);
    expect(sendError).to.equal(null);
    expect(lines.filter((l) => /^ack /.test(l))).to.include.members(['ack text sent', 'ack image sent', 'ack voice sent']);
    expect(lines.some((l) => /^ack (true|false)_/.test(l)), 'no ack printed with a raw id').to.equal(false);
    expect(acks.text).to.include('sent');
    // Each ack is printed after the line that names its message.
    expect(lines.indexOf('ack text sent')).to.be.greaterThan(lines.findIndex((l) => l.startsWith('sent text ')));
  });

  it('a failed send ends the run after the wait instead of hanging', async () => {
    const world = new StandInWorld();
    world.registered.set(TO, false);
    const { lines, sendError } = await smoke(world);
    expect(sendError).to.equal('not on WhatsApp');
    expect(lines).to.include('send failed: not on WhatsApp');
    expect(lines.some((l) => l.startsWith('acks:'))).to.equal(true);
  });
});
