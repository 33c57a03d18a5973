using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// docs/PORTING.md's example (samples/FromAsyncio/UpperServer.cs, compiled into the tests): streams,
/// a queue and a lock together, on each loop, giving what the document says it prints.
/// </summary>
public abstract class FromAsyncioTests : LoopSuite
{
    protected FromAsyncioTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void ThePortedProgramPrintsWhatTheDocumentSays()
    {
        string output = "";
        Run(Kind, async loop => { output = await FromAsyncio.UpperServer.RunAsync("hello", "tulip"); });
        Assert.Equal("HELLO\nTULIP\nserved 2", output);
    }
}

public sealed class EpollFromAsyncioTests() : FromAsyncioTests(LoopKinds.Epoll);

public sealed class PollFromAsyncioTests() : FromAsyncioTests(LoopKinds.Poll);

public sealed class ProactorFromAsyncioTests() : FromAsyncioTests(LoopKinds.Proactor);
