// Ids the client makes for retry-safe writes (`client_message_id`,
// `command_id`): random, so two tabs of one user never share one.

export function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + '_' + Array.from(bytes, byte => byte.toString(16).padStart(2, '0')).join('');
}
