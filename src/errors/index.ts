export { AppError, isAppError } from './app-error.ts';
export { errorCodes, type ErrorCode } from './codes.ts';
export { fromPgError } from './pg-errors.ts';
