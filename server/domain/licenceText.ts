// The texts admins see about their licence (widget banner, CRM notification, e-mail), in the
// four languages the widget speaks. English is the fallback.
import { LANGS, type Lang } from './licencePlans';

export function langOf(input: string | null | undefined): Lang {
  const l = (input ?? '').slice(0, 2).toLowerCase();
  return (LANGS as readonly string[]).includes(l) ? (l as Lang) : 'en';
}

/** Picks the first supported language of an Accept-Language header. */
export function langFromHeader(header: string | null | undefined): Lang {
  for (const part of (header ?? '').split(',')) {
    const l = part.trim().slice(0, 2).toLowerCase();
    if ((LANGS as readonly string[]).includes(l)) return l as Lang;
  }
  return 'en';
}

const date = (t: number) => new Date(t).toISOString().slice(0, 10);
const hm = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';

type Texts = {
  expiring(days: number, at: number, trial: boolean): string;
  expired(trial: boolean): string;
  suspended(reason: string): string;
  maintenanceSoon(start: number, end: number, reason: string): string;
  maintenanceNow(end: number, reason: string): string;
  expiredSend: string;
  suspendedSend(reason: string): string;
  numberLimit(limit: number, plan: string): string;
};

const T: Record<Lang, Texts> = {
  en: {
    expiring: (d, at, trial) => `${trial ? 'The trial' : 'InCRM access'} ends in ${d} day${d === 1 ? '' : 's'} (${date(at)}). Pay to keep WhatsApp working.`,
    expired: (trial) => `${trial ? 'The trial has ended' : 'InCRM access has expired'}: sending is paused. History stays readable and incoming messages are still received. Pay to resume.`,
    suspended: (r) => `InCRM is suspended for this portal: ${r}`,
    maintenanceSoon: (s, e, r) => `Planned maintenance ${hm(s)} – ${hm(e)}: ${r}. Paid periods are extended by its length.`,
    maintenanceNow: (e, r) => `Maintenance in progress until ${hm(e)}: ${r}. Paid periods are extended by its length.`,
    expiredSend: 'The InCRM licence of this portal has expired: sending is paused until it is paid. History stays readable.',
    suspendedSend: (r) => `InCRM is suspended for this portal: ${r}`,
    numberLimit: (n, p) => `The ${p} plan includes ${n} WhatsApp number${n === 1 ? '' : 's'}; disconnect one or change the plan to connect another.`,
  },
  ru: {
    expiring: (d, at, trial) => `${trial ? 'Пробный период' : 'Доступ к InCRM'} заканчивается через ${d} дн. (${date(at)}). Оплатите, чтобы WhatsApp продолжал работать.`,
    expired: (trial) => `${trial ? 'Пробный период закончился' : 'Доступ к InCRM истёк'}: отправка приостановлена. История доступна, входящие сообщения принимаются. Оплатите, чтобы продолжить.`,
    suspended: (r) => `InCRM приостановлен для этого портала: ${r}`,
    maintenanceSoon: (s, e, r) => `Плановые работы ${hm(s)} – ${hm(e)}: ${r}. Оплаченные периоды продлеваются на их длительность.`,
    maintenanceNow: (e, r) => `Идут технические работы до ${hm(e)}: ${r}. Оплаченные периоды продлеваются на их длительность.`,
    expiredSend: 'Лицензия InCRM этого портала истекла: отправка приостановлена до оплаты. История доступна.',
    suspendedSend: (r) => `InCRM приостановлен для этого портала: ${r}`,
    numberLimit: (n, p) => `Тариф ${p} включает номеров WhatsApp: ${n}. Отключите номер или смените тариф, чтобы подключить ещё один.`,
  },
  es: {
    expiring: (d, at, trial) => `${trial ? 'La prueba' : 'El acceso a InCRM'} termina en ${d} día${d === 1 ? '' : 's'} (${date(at)}). Pague para que WhatsApp siga funcionando.`,
    expired: (trial) => `${trial ? 'La prueba ha terminado' : 'El acceso a InCRM ha caducado'}: el envío está en pausa. El historial sigue visible y los mensajes entrantes se reciben. Pague para reanudar.`,
    suspended: (r) => `InCRM está suspendido para este portal: ${r}`,
    maintenanceSoon: (s, e, r) => `Mantenimiento programado ${hm(s)} – ${hm(e)}: ${r}. Los periodos pagados se amplían por su duración.`,
    maintenanceNow: (e, r) => `Mantenimiento en curso hasta ${hm(e)}: ${r}. Los periodos pagados se amplían por su duración.`,
    expiredSend: 'La licencia de InCRM de este portal ha caducado: el envío está en pausa hasta el pago. El historial sigue visible.',
    suspendedSend: (r) => `InCRM está suspendido para este portal: ${r}`,
    numberLimit: (n, p) => `El plan ${p} incluye ${n} número(s) de WhatsApp; desconecte uno o cambie de plan para conectar otro.`,
  },
  pt: {
    expiring: (d, at, trial) => `${trial ? 'O teste' : 'O acesso ao InCRM'} termina em ${d} dia${d === 1 ? '' : 's'} (${date(at)}). Pague para manter o WhatsApp funcionando.`,
    expired: (trial) => `${trial ? 'O teste terminou' : 'O acesso ao InCRM expirou'}: o envio está pausado. O histórico continua visível e as mensagens recebidas são guardadas. Pague para retomar.`,
    suspended: (r) => `O InCRM está suspenso para este portal: ${r}`,
    maintenanceSoon: (s, e, r) => `Manutenção programada ${hm(s)} – ${hm(e)}: ${r}. Os períodos pagos são estendidos pela sua duração.`,
    maintenanceNow: (e, r) => `Manutenção em andamento até ${hm(e)}: ${r}. Os períodos pagos são estendidos pela sua duração.`,
    expiredSend: 'A licença do InCRM deste portal expirou: o envio está pausado até o pagamento. O histórico continua visível.',
    suspendedSend: (r) => `O InCRM está suspenso para este portal: ${r}`,
    numberLimit: (n, p) => `O plano ${p} inclui ${n} número(s) de WhatsApp; desconecte um ou mude de plano para conectar outro.`,
  },
};

export const texts = (lang: string | null | undefined): Texts => T[langOf(lang)];
