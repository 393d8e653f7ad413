// The slice of whatsapp-web.js 1.34 the engine uses, as structural types. The engine is written
// against these, so a test can hand it a stand-in Client reproducing the library's events.
import { Client, LocalAuth, MessageMedia } from 'whatsapp-web.js';

export interface WaId {
  _serialized: string;
  user?: string;
  server?: string;
}

export interface WaMessageId {
  _serialized: string;
  fromMe: boolean;
  remote: string;
  id: string;
}

export interface WaMediaData {
  data: string;
  mimetype: string;
  filename?: string | null;
  filesize?: number | null;
}

export interface WaMessage {
  id: WaMessageId;
  from: string;
  to: string;
  author?: string;
  body: string;
  type: string;
  /** Unix seconds. */
  timestamp: number;
  fromMe: boolean;
  hasMedia: boolean;
  ack: number;
  hasQuotedMsg?: boolean;
  isStatus?: boolean;
  location?: { latitude: number | string; longitude: number | string; description?: string; name?: string; address?: string } | null;
  _data?: { notifyName?: string; size?: number; filename?: string; mimetype?: string; caption?: string };
  downloadMedia(): Promise<WaMediaData | null | undefined>;
  getQuotedMessage?(): Promise<{ id: WaMessageId } | null | undefined>;
}

export interface WaChat {
  id: WaId;
  isGroup?: boolean;
  /** Unix seconds of the last activity. */
  timestamp?: number;
  fetchMessages(opts: { limit?: number; fromMe?: boolean }): Promise<WaMessage[]>;
}

/** What `sendMessage` accepts as media: the library's MessageMedia (plain data). */
export interface WaMedia {
  mimetype: string;
  data: string;
  filename?: string | null;
  filesize?: number | null;
}

export interface WaSendOptions {
  caption?: string;
  sendAudioAsVoice?: boolean;
  sendMediaAsDocument?: boolean;
  quotedMessageId?: string;
  sendSeen?: boolean;
  linkPreview?: boolean;
}

interface Emitter {
  on(event: string, fn: (...args: any[]) => void): unknown;
}

/** whatsapp-web.js `Client`, as far as the engine touches it. */
export interface WaClient {
  on(event: string, fn: (...args: any[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
  initialize(): Promise<void>;
  destroy(): Promise<void>;
  logout(): Promise<void>;
  info?: { wid?: WaId; pushname?: string } | null;
  /** The WhatsApp Web tab (a puppeteer Page); `evaluate` is used by the health probe only. */
  pupPage?: (Emitter & { evaluate?(expression: string): Promise<unknown> }) | null;
  /** Set when the Client launched Chromium itself. */
  pupBrowser?: { process?(): { pid?: number } | null } | null;
  getState?(): Promise<string | null>;
  getNumberId(number: string): Promise<WaId | null>;
  sendMessage(chatId: string, content: string | WaMedia, options?: WaSendOptions): Promise<WaMessage | undefined | null>;
  getChats(): Promise<WaChat[]>;
  getChatById(chatId: string): Promise<WaChat | null | undefined>;
  sendSeen(chatId: string): Promise<boolean>;
  getContactLidAndPhone?(userIds: string[]): Promise<{ lid?: string; pn?: string }[]>;
}

export interface ClientSpec {
  /** LocalAuth clientId (`number-<id>`) and the folder holding every profile. */
  clientId: string;
  dataPath: string;
  /** The profile folder LocalAuth uses: `<dataPath>/session-<clientId>`. */
  profileDir: string;
  /** Set when the engine launched Chromium itself; otherwise the Client launches it with `launch`. */
  browserWSEndpoint: string | null;
  launch: { executablePath: string; args: string[] } | null;
}

export type ClientFactory = (spec: ClientSpec) => WaClient;

/** The real library. Acks, QR and messages come from WhatsApp Web inside Chromium. */
export const createWwebjsClient: ClientFactory = (spec) => {
  const client = new Client({
    authStrategy: new LocalAuth({ clientId: spec.clientId, dataPath: spec.dataPath }),
    puppeteer: spec.browserWSEndpoint
      ? { browserWSEndpoint: spec.browserWSEndpoint, defaultViewport: null }
      : { headless: true, executablePath: spec.launch?.executablePath, args: spec.launch?.args, defaultViewport: null },
    // We restart ourselves after an unscanned QR; the library's own limit would race with ours.
    qrMaxRetries: 0,
    // A second WhatsApp Web elsewhere is the user's choice: reconnect with backoff, do not fight it.
    takeoverOnConflict: false,
    authTimeoutMs: 60_000,
  });
  return client as unknown as WaClient;
};

export function toWaMedia(mimetype: string, data: Buffer, filename: string | null | undefined): WaMedia {
  return new MessageMedia(mimetype, data.toString('base64'), filename ?? null, data.length);
}
