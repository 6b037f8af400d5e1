// Every failure the client reports is a NorthstarError: the server's stable
// code and message when the server answered, or one of the client's own
// codes (listed in northstar.d.ts) when it did not.

export class NorthstarError extends Error {
  /**
   * @param {string} code     stable, machine-readable (`rev_conflict`, `unauthorized`, `connection_lost`, ...)
   * @param {string} message  for people
   * @param {object} [extra]  `status` (HTTP status, when the server answered), `requestId` (the
   *                          answer's `x-request-id`) and the error's other members
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'NorthstarError';
    this.code = code;
    this.status = extra.status ?? null;
    this.requestId = extra.requestId ?? null;
    this.details = { ...extra };
    delete this.details.status;
    delete this.details.requestId;
  }

  /** From the server's `{"error": {"code", "message", ...}}`, its status and request id. */
  static fromServer(error, status, requestId = null) {
    const { code = 'unknown_error', message = 'the server refused the request', ...rest } = error ?? {};
    return new NorthstarError(code, message, { ...rest, status, requestId });
  }
}
