// Node.js TLS echo server (tls.createServer: OpenSSL under libuv), the TLS twin of
// ../shared/bench/peers/node_echo.js.
// usage: node node_tls_echo.js PORT CERT.pem KEY.pem
const fs = require('fs');
const tls = require('tls');
const [port, cert, key] = process.argv.slice(2);
if (!key) {
  console.error('usage: node node_tls_echo.js PORT CERT.pem KEY.pem');
  process.exit(2);
}
tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), noDelay: true }, (s) => {
  s.setNoDelay(true);
  s.on('data', (d) => s.write(d));
  s.on('error', () => {});
}).listen(Number(port), '127.0.0.1', 1024);
