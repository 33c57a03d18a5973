using System.Text;
using Tulip.Streams;
using static Tulip.Tests.Tls.TlsTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// asyncio's streams over TLS: <see cref="StreamConnections.OpenConnectionAsync"/> and
/// <see cref="StreamConnections.StartServerAsync"/> with Ssl, ReadLine/ReadExactly/ReadUntil across
/// records, the peer's close_notify as EOF, WaitClosedAsync, on every loop and the memory loop.
/// </summary>
public abstract class TlsStreamsContractTests : LoopSuite
{
    protected TlsStreamsContractTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void Lines_Exactly_Until_Eof_AndWaitClosed_OverTls()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var handlerDone = loop.CreateFuture<bool>();
            var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                try
                {
                    Assert.Equal("hello\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
                    var block = await reader.ReadExactlyAsync(100_000);
                    Assert.Equal(Pattern(100_000), block);
                    writer.Write(Encoding.ASCII.GetBytes($"got {block.Length}\r\n"));
                    writer.Write(block);
                    writer.Write("END"u8);
                    await writer.DrainAsync();
                    Assert.Empty(await reader.ReadAsync()); // the client's close_notify
                    Assert.True(reader.AtEof);
                    writer.Close();
                    await writer.WaitClosedAsync();
                    handlerDone.SetResult(true);
                }
                catch (Exception ex)
                {
                    handlerDone.SetException(ex);
                }
            }, "127.0.0.1", 0, new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server),
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions(targetHost: null) }); // the host is the name checked
            Assert.False(w.CanWriteEof);
            w.Write("hel"u8);
            w.Write("lo\n"u8);
            w.Write(Pattern(100_000));
            await w.DrainAsync();
            Assert.Equal("got 100000\r\n", Encoding.ASCII.GetString(await r.ReadUntilAsync("\r\n"u8.ToArray())));
            Assert.Equal(Pattern(100_000), await r.ReadExactlyAsync(100_000));
            Assert.Equal("END", Encoding.ASCII.GetString(await r.ReadExactlyAsync(3)));
            w.Close();
            await w.WaitClosedAsync();
            Assert.True(await handlerDone);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void ServerCloses_ClientSeesEof_ReadExactlyPastItFails()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var server = await StreamConnections.StartServerAsync(static async (reader, writer) =>
            {
                writer.Write("partial"u8);
                writer.Close();
                await writer.WaitClosedAsync();
            }, "127.0.0.1", 0, new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server),
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            var ex = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadExactlyAsync(100));
            Assert.Equal("partial", Encoding.ASCII.GetString(ex.Partial));
            Assert.True(r.AtEof);
            Assert.Empty(await r.ReadAsync());
            await w.WaitClosedAsync(); // close_notify answered: a clean close, no truncation
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void ManyClients_LinesOverTls_EachServedAlone()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var server = await StreamConnections.StartServerAsync(static async (reader, writer) =>
            {
                await foreach (var line in reader)
                {
                    writer.Write(line);
                    await writer.DrainAsync();
                }

                writer.Close();
            }, "127.0.0.1", 0, new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var clients = Enumerable.Range(0, 10).Select(i => loop.CreateTask(async () =>
            {
                var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server),
                    new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
                for (int n = 0; n < 5; n++)
                {
                    var line = $"client {i} line {n}\n";
                    w.Write(Encoding.ASCII.GetBytes(line));
                    Assert.Equal(line, Encoding.ASCII.GetString(await r.ReadLineAsync()));
                }

                w.Close();
                await w.WaitClosedAsync();
            })).ToList();
            foreach (var c in clients)
            {
                await c;
            }

            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }
}

public sealed class EpollTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.Epoll);

public sealed class PollTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.Poll);

public sealed class ProactorTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.Proactor);

public sealed class MemoryTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.Memory);
