/**
 * Fetches the text of a price list over HTTP(S), for `ai-cost prices sync`.
 * Every way it can fail (a bad URL, no connection, an HTTP error, no answer
 * in time) is one PriceListUnavailableError saying which, so the caller
 * writes nothing and tells the user in one line.
 */

/** The community price list LiteLLM publishes (MIT-licensed), which `prices sync` reads by default. */
export const COMMUNITY_PRICE_LIST_URL = 'https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json';

/** How long a fetch may take, answer and body together. */
const FETCH_TIMEOUT_MS = 60_000;

/** A price list that could not be fetched; the message says why. */
export class PriceListUnavailableError extends Error {
  override name = 'PriceListUnavailableError';
}

/** What a network error code means, for the codes a user can do something about. */
const NETWORK_ERRORS = new Map<string, string>([
  ['ECONNREFUSED', 'connection refused'],
  ['ECONNRESET', 'the connection was reset'],
  ['ENOTFOUND', 'host not found'],
  ['EAI_AGAIN', 'host not found (DNS lookup failed)'],
  ['ETIMEDOUT', 'connection timed out'],
  ['ENETUNREACH', 'network unreachable'],
  ['EHOSTUNREACH', 'host unreachable'],
  ['UND_ERR_CONNECT_TIMEOUT', 'connection timed out'],
]);

/** The body of the price list at `url`; throws PriceListUnavailableError when there is none to read. */
export async function fetchPriceList(url: string): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PriceListUnavailableError(`${url} is not a URL: give an http(s):// URL, or use \`ai-cost prices import <file>\` for a file`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new PriceListUnavailableError(`${url}: only http:// and https:// URLs can be fetched; use \`ai-cost prices import <file>\` for a file`);
  }
  try {
    const response = await fetch(parsed, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new PriceListUnavailableError(`${url}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    return await response.text();
  } catch (error) {
    if (error instanceof PriceListUnavailableError) throw error;
    throw new PriceListUnavailableError(`cannot fetch ${url}: ${reason(error)}`);
  }
}

/** Why a fetch failed, from the error or the one it wraps (fetch's TypeError wraps the socket's). */
function reason(error: unknown): string {
  const seen: unknown[] = [];
  for (let e = error; e && typeof e === 'object' && !seen.includes(e); e = (e as { cause?: unknown }).cause) {
    seen.push(e);
    const { name, code, message } = e as { name?: string; code?: string; message?: string };
    if (name === 'TimeoutError') return `no answer within ${FETCH_TIMEOUT_MS / 1000} seconds`;
    if (code && NETWORK_ERRORS.has(code)) return NETWORK_ERRORS.get(code)!;
    // Happy eyeballs tries every address and reports each failure.
    const inner = (e as { errors?: unknown[] }).errors?.[0];
    if (inner) return reason(inner);
    if (code && !(e as { cause?: unknown }).cause) return `${message ?? 'failed'} (${code})`;
  }
  return (error as Error)?.message ?? String(error);
}
