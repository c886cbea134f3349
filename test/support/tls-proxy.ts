import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * A PostgreSQL server with SSL in front of a test server without it: a proxy
 * on 127.0.0.1 that answers a client's SSL request as PostgreSQL with
 * ssl = on does, speaks TLS with the certificate of test/fixtures/tls, and
 * passes the protocol on to the server in plain. So the tests try every
 * sslmode on whatever server they run on, without changing its settings.
 *
 * test/fixtures/tls holds an authority (ca.pem) and a certificate it signed
 * for the name localhost only (server.pem, server.key), both valid for a
 * hundred years, made with openssl: `req -x509 -newkey rsa:2048 -nodes -days
 * 36500` for the authority, then `req -newkey` and `x509 -req -CA ca.pem`
 * with subjectAltName=DNS:localhost for the server. The authority's key was
 * not kept.
 */
export interface TlsProxy {
  port: number;
  /** TLS sessions a client completed with the proxy. */
  sessions(): number;
  close(): Promise<void>;
}

export const TLS_FIXTURES = new URL('../fixtures/tls/', import.meta.url);

/** PostgreSQL's SSLRequest: length 8, then the code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export async function startTlsProxy(serverUrl: string): Promise<TlsProxy> {
  const target = new URL(serverUrl);
  const key = readFileSync(new URL('server.key', TLS_FIXTURES));
  const cert = readFileSync(new URL('server.pem', TLS_FIXTURES));
  const sockets = new Set<Socket>();
  let sessions = 0;
  const upstream = () => {
    const socket = connect(Number(target.port || 5432), target.hostname);
    sockets.add(socket);
    return socket;
  };
  const proxy = createServer((client) => {
    sockets.add(client);
    client.once('data', (first) => {
      if (!first.subarray(0, 8).equals(SSL_REQUEST)) {
        const server = upstream();
        server.write(first);
        client.pipe(server).pipe(client);
        server.on('error', () => client.destroy());
        return;
      }
      client.write('S');
      const secure = new TLSSocket(client, { isServer: true, key, cert });
      secure.on('secure', () => {
        sessions += 1;
        const server = upstream();
        secure.pipe(server).pipe(secure);
        server.on('error', () => secure.destroy());
      });
      // A client that refuses the certificate ends the handshake: nothing to pass on.
      secure.on('error', () => client.destroy());
    });
    client.on('error', () => {});
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    sessions: () => sessions,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
