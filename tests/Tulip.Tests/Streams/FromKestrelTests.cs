using System.Buffers;
using System.IO.Pipelines;
using FromKestrel;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// docs/COMING_FROM_KESTREL.md's program (samples/FromKestrel, compiled into the tests), on each loop: a
/// System.IO.Pipelines frame handler served through <see cref="Tulip.Streams.DuplexPipeProtocol"/>,
/// on the loop thread and on the thread pool, prints what the guide shows.
/// </summary>
public abstract class FromKestrelTests : LoopSuite
{
    private const string Lines = """
        frame 1: 5 bytes: HELLO (upper-cased: True)
        frame 2: 18 bytes: PIPELINES ON TULIP (upper-cased: True)
        frame 3: 200000 bytes: ABCDEFGHIJKLMNOPQRST... (upper-cased: True)
        server: 3 frames served, the third equal to what was sent upper-cased: True
        client back on the loop thread: True

        """;

    protected FromKestrelTests(LoopKind kind) : base(kind)
    {
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheFrameDemoPrintsWhatTheGuideShows(bool handlerOnThreadPool)
    {
        using var output = new StringWriter { NewLine = "\n" };
        Run(Kind, async loop => await FrameDemo.RunAsync(output, handlerOnThreadPool));
        Assert.Equal(Lines.ReplaceLineEndings("\n"), output.ToString());
    }
}

public sealed class EpollFromKestrelTests() : FromKestrelTests(LoopKinds.Epoll);

public sealed class PollFromKestrelTests() : FromKestrelTests(LoopKinds.Poll);

public sealed class ProactorFromKestrelTests() : FromKestrelTests(LoopKinds.Proactor);

/// <summary>
/// The sample's parser and handler without any loop or socket: on two in-memory <see cref="Pipe"/>s, as a
/// Kestrel user tests a connection handler. Bytes arrive one at a time (every header and payload split
/// across reads); bad input ends in <see cref="InvalidDataException"/> saying what was wrong.
/// </summary>
public sealed class FromKestrelFramesTests
{
    [Fact]
    public async Task TheHandler_AnswersEveryFrame_WhenBytesArriveOneAtATime()
    {
        var (connection, peer) = PipePair();
        var serving = UpperHandler.ServeAsync(connection);
        var bytes = Encode("one", "", "three, with spaces");
        foreach (byte b in bytes)
        {
            await peer.Output.WriteAsync(new[] { b });
        }

        await peer.Output.CompleteAsync();
        Assert.Equal(3, await serving.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal(Encode("ONE", "", "THREE, WITH SPACES"), await ReadToEnd(peer.Input));
    }

    [Fact]
    public async Task AHeaderOverTheLimit_IsInvalidData_AndAbortsTheConnection()
    {
        var (connection, peer) = PipePair();
        var serving = UpperHandler.ServeAsync(connection);
        await peer.Output.WriteAsync(new byte[] { 0x7f, 0xff, 0xff, 0xff });
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => serving.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("announced 2147483647 bytes; the limit is 1048576", error.Message, StringComparison.Ordinal);
        // Completed with the exception, as Kestrel aborts: the peer's read sees it.
        var seen = await Assert.ThrowsAsync<InvalidDataException>(async () => await peer.Input.ReadAsync());
        Assert.Same(error, seen);
    }

    [Fact]
    public async Task EofInTheMiddleOfAFrame_IsInvalidData()
    {
        var (connection, peer) = PipePair();
        var serving = UpperHandler.ServeAsync(connection);
        byte[] frame = Encode("truncated");
        await peer.Output.WriteAsync(frame.AsMemory(0, frame.Length - 2));
        await peer.Output.CompleteAsync();
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => serving.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("closed in the middle of a frame (11 bytes of it had come)", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("samples/FromKestrel/Frames.cs")]
    [InlineData("samples/FromKestrel/UpperHandler.cs")]
    [InlineData("samples/FromKestrel/FrameDemo.cs")]
    public void TheGuideShowsTheSampleVerbatim(string sample)
    {
        string guide = File.ReadAllText(FromAsyncioGuideTests.RepositoryFile("docs/COMING_FROM_KESTREL.md")).ReplaceLineEndings("\n");
        string code = File.ReadAllText(FromAsyncioGuideTests.RepositoryFile(sample)).ReplaceLineEndings("\n");
        Assert.True(guide.Contains($"```csharp\n{code}```\n", StringComparison.Ordinal),
            $"docs/COMING_FROM_KESTREL.md does not show {sample} as it is: paste the file into its ```csharp block");
    }

    [Fact]
    public void WritingAPayloadOverTheLimit_IsRefused()
    {
        var writer = new Pipe().Writer;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Frames.Write(writer, new byte[Frames.MaxPayload + 1]));
        Assert.Equal("length", error.ParamName);
    }

    private static byte[] Encode(params string[] payloads)
    {
        var pipe = new Pipe();
        foreach (string p in payloads)
        {
            Frames.Write(pipe.Writer, System.Text.Encoding.ASCII.GetBytes(p));
        }

        pipe.Writer.Complete();
        pipe.Reader.TryRead(out var result);
        byte[] bytes = result.Buffer.ToArray();
        pipe.Reader.Complete();
        return bytes;
    }

    private static async Task<byte[]> ReadToEnd(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            if (result.IsCompleted)
            {
                byte[] all = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                await reader.CompleteAsync();
                return all;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Two ends of an in-memory connection: what one writes, the other reads.</summary>
    private static (IDuplexPipe Connection, IDuplexPipe Peer) PipePair()
    {
        var toServer = new Pipe();
        var toPeer = new Pipe();
        return (new Duplex(toServer.Reader, toPeer.Writer), new Duplex(toPeer.Reader, toServer.Writer));
    }

    private sealed record Duplex(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
