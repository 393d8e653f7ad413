import pino from 'pino';

export type Logger = pino.Logger;

/** JSON logs; request and portal ids are added as child bindings where they are known. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'incrm' }, timestamp: pino.stdTimeFunctions.isoTime });
}
