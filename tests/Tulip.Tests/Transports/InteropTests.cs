using System.Diagnostics;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>A fact that is skipped, saying why, when /usr/bin/python3 lacks the peer module.</summary>
public sealed class PythonPeerFactAttribute : FactAttribute
{
    public PythonPeerFactAttribute(string module)
    {
        if (!PythonPeer.Has(module))
        {
            Skip = $"{PythonPeer.Python} cannot import {module}: install python3 and python3-twisted (Debian) to run the interop tests.";
        }
    }
}

internal static class PythonPeer
{
    public const string Python = "/usr/bin/python3";

    public static bool Has(string module)
    {
        if (!File.Exists(Python))
        {
            return false;
        }

        using var p = Process.Start(new ProcessStartInfo(Python, ["-c", $"import {module}"]) { RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    public static Process Start(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    public const string AsyncioServer = """
        import asyncio, sys
        class Echo(asyncio.Protocol):
            def connection_made(self, t): self.t = t
            def data_received(self, d): self.t.write(d)
            def eof_received(self): return False
        async def main():
            srv = await asyncio.get_running_loop().create_server(Echo, '127.0.0.1', int(sys.argv[1]))
            await asyncio.sleep(120)
        asyncio.run(main())
        """;

    public const string AsyncioClient = """
        import asyncio, os, sys
        async def main():
            r, w = await asyncio.open_connection('127.0.0.1', int(sys.argv[1]))
            data = os.urandom(int(sys.argv[2]))
            w.write(data); await w.drain(); w.write_eof()
            got = await r.read()
            w.close()
            return 0 if got == data else 1
        sys.exit(asyncio.run(main()))
        """;

    public const string TwistedServer = """
        from twisted.internet import reactor, protocol
        from twisted.internet.interfaces import IHalfCloseableProtocol
        from zope.interface import implementer
        @implementer(IHalfCloseableProtocol)
        class Echo(protocol.Protocol):
            def dataReceived(self, d): self.transport.write(d)
            def readConnectionLost(self): self.transport.loseConnection()
            def writeConnectionLost(self): pass
        f = protocol.Factory.forProtocol(Echo)
        import sys
        reactor.listenTCP(int(sys.argv[1]), f, interface='127.0.0.1')
        reactor.run()
        """;

    public const string TwistedClient = """
        import os, sys
        from twisted.internet import reactor, protocol
        from twisted.internet.interfaces import IHalfCloseableProtocol
        from zope.interface import implementer
        data = os.urandom(int(sys.argv[2])); got = []; result = [1]
        @implementer(IHalfCloseableProtocol)
        class C(protocol.Protocol):
            def connectionMade(self):
                self.transport.write(data); self.transport.loseWriteConnection()
            def dataReceived(self, d): got.append(d)
            def readConnectionLost(self):
                result[0] = 0 if b''.join(got) == data else 1
                self.transport.loseConnection()
            def writeConnectionLost(self): pass
            def connectionLost(self, reason): reactor.stop()
        protocol.ClientCreator(reactor, C).connectTCP('127.0.0.1', int(sys.argv[1]))
        reactor.run()
        sys.exit(result[0])
        """;
}

/// <summary>Python's asyncio and Twisted as the peer, as server and as client (issue 3's interop tests).</summary>
// Child Python processes and their sockets close on their own schedule: keep these out of the way of
// the tests that count fds (they run in the same non-parallel collection).
[Collection(NativeFdCollection.Name)]
public abstract class InteropTests : LoopSuite
{
    private const int Size = (1 << 20) + 7;

    protected InteropTests(LoopKind kind) : base(kind)
    {
    }

    private void TulipClientAgainst(string serverScript)
    {
        int port = FreePort();
        using var peer = PythonPeer.Start(serverScript, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            Run(Kind, async loop =>
            {
                // Retry until the peer listens: at most 200 attempts 50 ms apart (a bounded wait).
                (ITransport Transport, RecordingProtocol Protocol)? connection = null;
                for (int attempt = 0; connection is null; attempt++)
                {
                    try
                    {
                        connection = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
                    }
                    catch (System.Net.Sockets.SocketException) when (attempt < 200 && !peer.HasExited)
                    {
                        await Tasks.Sleep(0.05);
                    }
                }

                var (transport, client) = connection.Value;
                var data = Pattern(Size);
                transport.Write(data);
                transport.WriteEof();
                Assert.Null(await client.Lost);
                Assert.True(client.Eof.Done);
                Assert.True(data.AsSpan().SequenceEqual(client.Received));
            });
        }
        finally
        {
            peer.Kill();
            peer.WaitForExit();
        }
    }

    private void PeerClientAgainstTulip(string clientScript)
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), ["127.0.0.1"], 0);
            using var peer = PythonPeer.Start(clientScript, PortOf(server).ToString(System.Globalization.CultureInfo.InvariantCulture), Size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var stderr = peer.StandardError.ReadToEndAsync();
            await peer.WaitForExitAsync();
            Assert.True(peer.ExitCode == 0, $"peer client failed ({peer.ExitCode}): {await stderr}");
        });
    }

    [PythonPeerFact("asyncio")]
    public void TulipClient_AsyncioServer() => TulipClientAgainst(PythonPeer.AsyncioServer);

    [PythonPeerFact("asyncio")]
    public void AsyncioClient_TulipServer() => PeerClientAgainstTulip(PythonPeer.AsyncioClient);

    [PythonPeerFact("twisted.internet")]
    public void TulipClient_TwistedServer() => TulipClientAgainst(PythonPeer.TwistedServer);

    [PythonPeerFact("twisted.internet")]
    public void TwistedClient_TulipServer() => PeerClientAgainstTulip(PythonPeer.TwistedClient);
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollInteropTests() : InteropTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollInteropTests() : InteropTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorInteropTests() : InteropTests(LoopKinds.Proactor);
