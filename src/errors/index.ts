export { AppError, isAppError } from './app-error.ts';
export { errorCodes, type ErrorCode } from './codes.ts';
export { DATABASE_RETRY_AFTER_S, databaseUnavailable, fromPgError, isConnectionError } from './pg-errors.ts';
