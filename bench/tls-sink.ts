/**
 * tls-sink.ts (bench) — a fast SMTP sink with STARTTLS, the TLS counterpart
 * of Debian's smtp-sink (which has no TLS): it answers every command, offers
 * PIPELINING and STARTTLS, accepts every message and throws it away. TLS 1.3
 * session tickets are issued, so clients can resume.
 *
 * Run as its own process so it does not share an event loop with what is
 * measured: `node --import tsx bench/tls-sink.ts HOST PORT CERT KEY`; it
 * prints `listening` once bound and counts messages to stdout every second
 * (`count N`). Not a test receiver: no scripting (see test/harness/smtp-receiver.ts).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';

const [host = '127.0.0.1', portText = '0', certFile = '', keyFile = ''] = process.argv.slice(2);
const context = createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
let count = 0;

function serve(sock: Socket | TLSSocket, tls: boolean): void {
  let buf = '';
  let inData = false;
  const onData = (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    let out = '';
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        if (end < 0) {
          // Keep the tail that could start the terminator.
          if (buf.length > 8) buf = buf.slice(buf.length - 4);
          break;
        }
        buf = buf.slice(end + 5);
        inData = false;
        count++;
        out += '250 2.0.0 Ok: queued\r\n';
        continue;
      }
      const nl = buf.indexOf('\r\n');
      if (nl < 0) break;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') out += `250-tls-sink\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n${tls ? '' : '250-STARTTLS\r\n'}250 ENHANCEDSTATUSCODES\r\n`;
      else if (verb === 'HELO') out += '250 tls-sink\r\n';
      else if (verb === 'STAR' && !tls) {
        sock.removeListener('data', onData);
        sock.write('220 2.0.0 Ready to start TLS\r\n');
        const secure = new TLSSocket(sock, { isServer: true, secureContext: context });
        secure.on('error', () => secure.destroy());
        serve(secure, true);
        return;
      } else if (verb === 'DATA') {
        inData = true;
        out += '354 End data with <CR><LF>.<CR><LF>\r\n';
      } else if (verb === 'QUIT') {
        sock.end('221 2.0.0 Bye\r\n');
        return;
      } else out += '250 2.0.0 Ok\r\n';
    }
    if (out) sock.write(out);
  };
  sock.on('data', onData);
  sock.on('error', () => sock.destroy());
}

const server = createServer((sock) => {
  sock.setNoDelay(true);
  sock.write('220 tls-sink ESMTP\r\n');
  serve(sock, false);
});
server.listen(Number(portText), host, () => process.stdout.write('listening\n'));
setInterval(() => process.stdout.write(`count ${count}\n`), 1000).unref();
process.on('SIGTERM', () => process.exit(0));
