"""asyncio and uvloop TLS echo servers (the TLS twin of ../shared/bench/peers/asyncio_echo.py).

The Protocol is the plain one; TLS comes from create_server(ssl=...), which is asyncio's sslproto
(a memory BIO pumped by the loop) on both asyncio and uvloop (uvloop has its own sslproto in Cython).
usage: python3 asyncio_tls_echo.py PORT CERT.pem KEY.pem [asyncio|uvloop]"""
import asyncio, socket, ssl, sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info('socket').setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(port, ctx):
    server = await asyncio.get_running_loop().create_server(Echo, '127.0.0.1', port, ssl=ctx, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    if len(sys.argv) < 4:
        sys.exit('usage: asyncio_tls_echo.py PORT CERT.pem KEY.pem [asyncio|uvloop]')
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if len(sys.argv) > 4 and sys.argv[4] == 'uvloop':
        import uvloop
        uvloop.install()
    asyncio.run(main(port, ctx))
