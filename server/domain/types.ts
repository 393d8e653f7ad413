// The domain's vocabulary. Plain data only: no framework, database or vendor types here.

export type CrmKind = 'none' | 'kommo' | 'bitrix24';

export type NumberState = 'starting' | 'qr' | 'ready' | 'offline' | 'logged_out' | 'failed';

/** Forward-only delivery status (DESIGN §4). `failed` sits outside the order and can go back to `queued` on retry. */
export type MessageStatus = 'queued' | 'sent' | 'delivered' | 'read' | 'played' | 'failed';

export type Direction = 'in' | 'out';

export type MessageType =
  | 'text'
  | 'image'
  | 'video'
  | 'audio'
  | 'voice'
  | 'document'
  | 'sticker'
  | 'location'
  | 'other';

export interface Portal {
  id: number;
  crm: CrmKind;
  name: string;
  externalId: string | null;
  settings: PortalSettings;
  createdAt: number;
}

export interface PortalSettings {
  /** What to do with a message from a number the CRM does not know. */
  unknownNumber?: 'create' | 'ignore';
  pipelineId?: string;
  stageId?: string;
  /** Bitrix24: what is created with the contact for an unknown number (default deal). */
  createAs?: 'deal' | 'lead';
  responsibleUserId?: string;
  mirror?: boolean;
  alertUserIds?: string[];
}

export interface WaNumber {
  id: number;
  portalId: number;
  phone: string | null;
  state: NumberState;
  stateDetail: string | null;
  qr: string | null;
  lastReadyAt: number | null;
  createdAt: number;
}

export interface Contact {
  id: number;
  portalId: number;
  /** E.164 (`+15550000002`) when known; null for a hidden-id contact until WhatsApp reveals it. */
  phone: string | null;
  /** WhatsApp's id of the chat: `15550000002@c.us` or `…@lid`. */
  waId: string;
  name: string | null;
  crmEntityType: string | null;
  crmEntityId: string | null;
}

export interface Conversation {
  id: number;
  portalId: number;
  numberId: number;
  contactId: number;
  lastMessageAt: number | null;
  unreadCount: number;
}

export interface MediaRef {
  id: number;
  sha256: string;
  mimetype: string;
  size: number;
  filename: string | null;
}

export interface Message {
  id: number;
  portalId: number;
  conversationId: number;
  numberId: number;
  direction: Direction;
  type: MessageType;
  text: string | null;
  status: MessageStatus;
  error: string | null;
  waMessageId: string | null;
  idempotencyKey: string | null;
  media: MediaRef | null;
  ptt: boolean;
  quotedMessageId: number | null;
  fromPhone: boolean;
  revoked: boolean;
  createdAt: number;
  sendStartedAt: number | null;
}

/**
 * A message as a history page shows it: without the pipeline's bookkeeping (engine id,
 * idempotency key, send start, portal and number ids). The page query reads only these columns.
 */
export type HistoryMessage = Omit<Message, 'portalId' | 'numberId' | 'waMessageId' | 'idempotencyKey' | 'sendStartedAt'>;

/** The caller proven by a token: which portal, which CRM user, whether an admin. */
export interface Principal {
  portalId: number;
  userId: string;
  admin: boolean;
}

/** What the domain publishes to live widgets; one stream per portal. */
export type LiveEvent =
  | { type: 'message'; conversationId: number; message: Message }
  | { type: 'status'; conversationId: number; messageId: number; status: MessageStatus; error: string | null }
  | { type: 'conversation'; conversationId: number; unreadCount: number; lastMessageAt: number | null }
  | { type: 'number'; number: WaNumber }
  /** A CRM alert for some users of the portal (Kommo's `everywhere` script shows it to them). */
  | { type: 'alert'; alertId: number; userIds: string[]; text: string; link: string | null }
  /** The portal's licence changed (same body as GET /api/v1/licence, in English). */
  | { type: 'licence'; licence: LicenceView };

/** The licence as the widget sees it (GET /api/v1/licence and the `licence` SSE event). */
export interface LicenceView {
  status: 'trial' | 'active' | 'expired' | 'suspended';
  plan: { code: string; name: string } | null;
  /** When access ends (the trial's end during a trial), ISO 8601; null without an end. */
  paidUntil: string | null;
  daysLeft: number | null;
  reason: string | null;
  canSend: boolean;
  notice: { kind: 'expiring' | 'expired' | 'suspended' | 'maintenance'; message: string } | null;
}
