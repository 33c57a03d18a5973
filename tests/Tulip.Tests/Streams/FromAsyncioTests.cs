using System.Diagnostics;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// The ported programs of the guides, compiled into the tests from samples/FromAsyncio and run on each
/// loop: docs/PORTING.md's (UpperServer.cs: streams, a queue and a lock) and docs/COMING_FROM_ASYNCIO.md's
/// (WordCount.cs: streams, a lock, a bounded queue, two task groups and a timeout), whose output must be
/// the lines its asyncio original (wordcount.py) prints under /usr/bin/python3.
/// </summary>
public abstract class FromAsyncioTests : LoopSuite
{
    /// <summary>What wordcount.py prints, as docs/COMING_FROM_ASYNCIO.md shows it.</summary>
    private const string WordCountLines = """
        carol: no answer within 0.1 s, half-closing
        alice: 10 words counted
        bob: 8 words counted
        carol: 2 words counted
        top: the 5, a 2, and 2, cat 2

        """;

    private static readonly Lazy<string> s_pythonWordCount = new(RunPythonWordCount);

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

    [Fact]
    public void TheWordCountPortPrintsWhatTheGuideShows()
    {
        Assert.Equal(WordCountLines.ReplaceLineEndings("\n"), RunWordCountPort());
    }

    [PythonPeerFact("asyncio.taskgroups")]
    public void TheWordCountPortPrintsWhatItsAsyncioOriginalPrints()
    {
        Assert.Equal(s_pythonWordCount.Value, RunWordCountPort());
    }

    private string RunWordCountPort()
    {
        using var output = new StringWriter { NewLine = "\n" };
        Run(Kind, async loop => await FromAsyncio.WordCount.RunAsync(output));
        return output.ToString();
    }

    /// <summary>wordcount.py under /usr/bin/python3 (3.11+, for TaskGroup and timeout), once per test run.</summary>
    private static string RunPythonWordCount()
    {
        string script = FromAsyncioGuideTests.RepositoryFile("samples/FromAsyncio/wordcount.py");
        var psi = new ProcessStartInfo(PythonPeer.Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // A hang guard only: the program takes a tenth of a second, plus start-up on a loaded machine.
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail("wordcount.py did not exit within the hang guard");
        }

        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"wordcount.py exited {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}

/// <summary>docs/COMING_FROM_ASYNCIO.md shows the two programs the tests run, verbatim, so the page cannot go stale.</summary>
public sealed class FromAsyncioGuideTests
{
    [Theory]
    [InlineData("samples/FromAsyncio/wordcount.py", "python")]
    [InlineData("samples/FromAsyncio/WordCount.cs", "csharp")]
    public void TheGuideShowsTheSampleVerbatim(string sample, string language)
    {
        string guide = File.ReadAllText(RepositoryFile("docs/COMING_FROM_ASYNCIO.md")).ReplaceLineEndings("\n");
        string code = File.ReadAllText(RepositoryFile(sample)).ReplaceLineEndings("\n");
        Assert.True(guide.Contains($"```{language}\n{code}```\n", StringComparison.Ordinal),
            $"docs/COMING_FROM_ASYNCIO.md does not show {sample} as it is: paste the file into its ```{language} block");
    }

    /// <summary>A file of the repository the tests were built from (found by walking up to Tulip.slnx).</summary>
    internal static string RepositoryFile(string relativePath)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.True(dir is not null, $"no Tulip.slnx above {AppContext.BaseDirectory}: the tests run from the repository's build output");
        string path = Path.Combine(dir!.FullName, relativePath);
        Assert.True(File.Exists(path), $"{path} is missing");
        return path;
    }
}

public sealed class EpollFromAsyncioTests() : FromAsyncioTests(LoopKinds.Epoll);

public sealed class PollFromAsyncioTests() : FromAsyncioTests(LoopKinds.Poll);

public sealed class ProactorFromAsyncioTests() : FromAsyncioTests(LoopKinds.Proactor);
