// One error family for the whole server. The HTTP error handler maps `status` and `code` to the
// response; the domain throws these without knowing about HTTP beyond the number.
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new AppError(400, 'bad_request', message, details);
export const unauthorized = (message = 'missing or invalid token') => new AppError(401, 'unauthorized', message);
export const forbidden = (message = 'admins only') => new AppError(403, 'forbidden', message);
export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`);
export const conflict = (message: string) => new AppError(409, 'conflict', message);
export const payloadTooLarge = (message: string) => new AppError(413, 'payload_too_large', message);
export const unavailable = (message: string) => new AppError(503, 'unavailable', message);
