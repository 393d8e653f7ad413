// The widget API's JSON shapes as the widget reads them (server/http/present.ts is the source).
export type MessageStatus = 'queued' | 'sent' | 'delivered' | 'read' | 'played' | 'failed';
export type NumberState = 'starting' | 'qr' | 'ready' | 'offline' | 'logged_out' | 'failed';
// 'phone': a portal without a CRM (simulator, console) treats the phone itself as the card.
export type EntityType = 'lead' | 'deal' | 'contact' | 'company' | 'phone';

export interface Media {
  url: string;
  mimetype: string;
  size: number;
  filename: string | null;
}

export interface Msg {
  id: number;
  conversationId: number;
  direction: 'in' | 'out';
  type: string;
  text: string | null;
  status: MessageStatus;
  error?: string;
  createdAt: string;
  media?: Media;
  ptt?: boolean;
  revoked?: boolean;
  /** Client-side only: the idempotency key of an optimistic message not yet stored. */
  key?: string;
  /** Client-side only: a local preview (object URL) of an optimistic media message. */
  localUrl?: string;
}

export interface Conv {
  id: number;
  numberId: number;
  numberPhone: string | null;
  phone: string | null;
  waId: string;
  name: string | null;
  unreadCount: number;
  lastMessageAt: string | null;
  lastMessage: Msg | null;
}

export interface WaNumber {
  id: number;
  phone: string | null;
  state: NumberState;
  stateDetail: string | null;
  qr: string | null;
  lastReadyAt: string | null;
}

export interface Licence {
  status: 'trial' | 'active' | 'expired' | 'suspended';
  plan: { code: string; name: string } | null;
  paidUntil: string | null;
  daysLeft: number | null;
  reason: string | null;
  canSend: boolean;
  notice: { kind: string; message: string } | null;
}

export interface PortalSettings {
  unknownNumber?: 'create' | 'ignore';
  pipelineId?: string;
  stageId?: string;
  responsibleUserId?: string;
  mirror?: boolean;
  alertUserIds?: string[];
}

export interface CrmOptions {
  pipelines: Array<{ id: string; name: string; main: boolean; stages: Array<{ id: string; name: string }> }>;
  users: Array<{ id: string; name: string; admin: boolean }>;
}
