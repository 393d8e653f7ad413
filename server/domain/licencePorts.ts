// What the licence service needs from persistence and from the rest of the server.
import type { Interval, LicenceRecord, MaintenanceWindow } from './licence';

export interface Payment {
  id: number;
  portalId: number;
  planCode: string;
  amountEur: number | null;
  /** The access this payment bought: [from, until). */
  from: number;
  until: number;
  reference: string | null;
  actor: string;
  at: number;
}

export interface StoredWindow extends MaintenanceWindow {
  createdAt: number;
  /** When credits were handed out (after the window ended); null before. */
  appliedAt: number | null;
}

export interface LicenceRepo {
  /** The record with its row version (for compare-and-swap saves), or null. */
  get(portalId: number): Promise<{ record: LicenceRecord; version: number } | null>;
  /** Creates the record unless one exists (a portal's trial starts once). */
  insertIfMissing(rec: LicenceRecord, now: number): Promise<void>;
  /** Saves if the row still has `version`; false when someone else saved first. */
  save(rec: LicenceRecord, version: number, now: number): Promise<boolean>;
  list(): Promise<LicenceRecord[]>;
  addPayment(p: Omit<Payment, 'id'>): Promise<Payment>;
  payments(portalId: number): Promise<Payment[]>;
  /** Every stretch of access the portal got besides its trial: payments and maintenance credits. */
  periods(portalId: number): Promise<Interval[]>;
  addWindow(w: { startAt: number; endAt: number; reason: string }, now: number): Promise<StoredWindow>;
  windows(): Promise<StoredWindow[]>;
  markWindowApplied(id: number, at: number): Promise<void>;
  /** Records the credit of one window to one portal; false when it was already given. */
  addCredit(c: { windowId: number; portalId: number; days: number; from: number; until: number; at: number }): Promise<boolean>;
  credits(windowId: number): Promise<{ portalId: number; days: number }[]>;
  /** The windows already credited to a portal, with the days each gave. */
  creditedWindows(portalId: number): Promise<{ windowId: number; startAt: number; endAt: number; days: number }[]>;
  /** Starts a suspension interval unless one is open (007_licence_suspensions). */
  openSuspension(portalId: number, from: number, reason: string): Promise<void>;
  /** Ends the open suspension interval, if any. */
  closeSuspension(portalId: number, until: number): Promise<void>;
  /** Every suspension of the portal, past and current (`until` Infinity while it lasts). */
  suspensions(portalId: number): Promise<Interval[]>;
  /** Expiry alert thresholds already handled for this expiry moment. */
  alertsDone(portalId: number, expiresAt: number): Promise<Set<number>>;
  /** Marks thresholds handled; returns those that were not marked before. */
  markAlerts(portalId: number, expiresAt: number, thresholds: number[], at: number): Promise<number[]>;
}

/** Side effects of access changing, supplied by the composition root (sessions, job queue). */
export interface LicenceEffects {
  /**
   * No access for the grace period: close the portal's sessions keeping their logins. `false`:
   * this process cannot (the CLI), so nothing is recorded and the server closes them at its next
   * rule run; anything else (true, or nothing) means they were closed. A throw is retried.
   */
  closeSessions(portalId: number, reason: string): Promise<boolean | void>;
  /** Access is back: reopen the sessions closed for lack of it; false when this process cannot. */
  reopenSessions(portalId: number): Promise<boolean>;
  /** Access is back: run the CRM jobs that were postponed now. */
  releaseDeferred(portalId: number): Promise<void>;
}

/** E-mail to the accounts linked to a portal (only when SMTP_URL is configured). */
export interface PortalMailer {
  /** The addresses of the console accounts linked to the portal. */
  recipients(portalId: number): Promise<string[]>;
  /** One message to one address: linked accounts never see each other's addresses. */
  send(to: string, subject: string, text: string): Promise<void>;
}
