using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// The TLS transport's DisposeAsync: TLS's own close (close_notify, the peer's answer), and a dispose
/// that completes once the transport beneath is gone and ConnectionLost has run; a wait the peer holds
/// up ends with the waiting task's cancellation or an Abort.
/// </summary>
public abstract partial class TlsContractTests
{
    [Fact]
    public void DisposeAsync_ClosesWithCloseNotify_AndCompletesAfterConnectionLost()
    {
        Run(Kind, async loop =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await RecordingTlsServer(loop, serverSide);
            var (transport, client) = await ConnectTls(loop, server);
            await serverSide[0].Made;
            await using (transport)
            {
                transport.Write(Pattern(100_000));
            }

            Assert.True(client.Lost.Done, "DisposeAsync returned before ConnectionLost ran");
            Assert.Null(client.Lost.Result());
            Assert.True(transport.IsClosing);
            Assert.Empty(client.Errors);
            await serverSide[0].Eof; // the close_notify came
            await serverSide[0].WaitBytes(loop, 100_000);

            // Again, once it is over: nothing to wait for.
            await transport.DisposeAsync();
        });
    }

    [Fact]
    public void DisposeAsync_APeerThatNeverAnswersTheClose_CancelEndsTheWait_AbortEndsTheConnection()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            await using var server = await TappedTlsEchoServer(loop, taps);
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Equal(Pattern(10), await Echo(loop, transport, client, Pattern(10)));
            taps[0].OnRead = static _ => []; // the server never sees our close_notify, so never answers

            var disposer = await StartDisposing(loop, transport);
            Assert.True(transport.IsClosing);
            disposer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await disposer);
            Assert.False(client.Lost.Done, "cancelling the wait does not end the connection");

            transport.Abort();
            Assert.Null(await client.Lost);
        });
    }

    [Fact]
    public void DisposeAsync_FromAnotherThread_IsRefused_AndClosesNothing()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, server);
            var offLoop = await Task.Run(async () => await Record.ExceptionAsync(async () => await transport.DisposeAsync()));
            Assert.IsType<InvalidOperationException>(offLoop);
            Assert.Contains("loop's thread", offLoop.Message, StringComparison.Ordinal);
            Assert.False(transport.IsClosing);
            await transport.DisposeAsync();
            Assert.True(client.Lost.Done);
        });
    }
}
