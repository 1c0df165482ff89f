/**
 * The metrics endpoint (GET /metrics over HTTP), in its own file so that node:http is loaded
 * only by a daemon configured with `metrics.listen` (issue #15: resident memory).
 */
import { Server } from 'node:http';
import { NethealError } from '../errors';
import { DaemonMetrics, parseListen } from './metrics';

/**
 * The metrics endpoint's server: an `http.Server` whose `close()` also drops the connections
 * still open (an idle keep-alive, a scraper that hangs mid-request), so closing it never
 * waits on a client.
 */
export class MetricsServer extends Server {
  override close(callback?: (error?: Error) => void): this {
    super.close(callback);
    this.closeAllConnections();
    return this;
  }
}

/** Serves GET /metrics; resolves once listening. */
export async function serveMetrics(metrics: DaemonMetrics, listen: string): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server = new MetricsServer({ headersTimeout: 5000, requestTimeout: 10_000 }, (request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.text().then(
      (body) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new NethealError('NETHEAL_ERR_CONFIG', `metrics.listen: cannot listen on ${listen}: ${error.code ?? error.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}
