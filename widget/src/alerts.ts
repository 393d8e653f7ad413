// New-message alerts that need no asset: a short WebAudio beep and the browser's notification
// (only where the user already allowed it; we never prompt from inside a CRM card uninvited).
let ctx: AudioContext | null = null;

export function beep(): void {
  try {
    const AC = (globalThis as { AudioContext?: typeof AudioContext }).AudioContext;
    if (!AC) return;
    ctx ??= new AC();
    if (ctx.state === 'suspended') void ctx.resume().catch(() => {});
    const o = ctx.createOscillator();
    const g = ctx.createGain();
    o.type = 'sine';
    o.frequency.value = 880;
    const t = ctx.currentTime;
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(0.2, t + 0.01);
    g.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    o.connect(g).connect(ctx.destination);
    o.start(t);
    o.stop(t + 0.26);
  } catch {
    /* no audio: fine */
  }
}

export function browserNotify(title: string, body: string): void {
  try {
    const N = (globalThis as { Notification?: typeof Notification }).Notification;
    if (!N || N.permission !== 'granted' || document.visibilityState === 'visible') return;
    new N(title, { body, tag: 'incrm' });
  } catch {
    /* not permitted here */
  }
}

/** Asks once, on a user gesture (the first send), so later alerts can use the notification. */
export function askNotifyPermission(): void {
  try {
    const N = (globalThis as { Notification?: typeof Notification }).Notification;
    if (N && N.permission === 'default') void N.requestPermission().catch(() => {});
  } catch {
    /* ignore */
  }
}
