/**
 * secrets-entry.ts — the script the master forks as its root helper
 * (`node secrets-entry CONFIG_DIR`, with an IPC channel): see secrets.ts.
 *
 * Contract: serves until the master disconnects, then exits 0.
 */
import { serveSecrets } from './secrets.ts';

serveSecrets(process.argv[2] ?? '/etc/sealpost');
