import nodemailer from 'nodemailer';
import type { PortalMailer } from '../../domain/licencePorts';
import type { AccountStore } from '../../persistence/repositories/accounts';

/**
 * E-mail to the console accounts linked to a portal, one message per address, over SMTP_URL (smtp:// or smtps://,
 * credentials in the URL). The sender is no-reply@<PUBLIC_URL host>.
 */
export function smtpMailer(smtpUrl: string, publicUrl: string | null, accounts: AccountStore): PortalMailer {
  const transport = nodemailer.createTransport(smtpUrl);
  const host = publicUrl ? new URL(publicUrl).hostname : 'localhost';
  const from = `InCRM <no-reply@${host}>`;
  return {
    recipients: (portalId) => accounts.emailsOfPortal(portalId),
    async send(to, subject, text) {
      await transport.sendMail({ from, to, subject, text });
    },
  };
}
