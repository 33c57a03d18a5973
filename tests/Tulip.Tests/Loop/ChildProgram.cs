using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tulip.Tests.Loop;

/// <summary>
/// tests/Tulip.TestProgram run as a child process in one of its modes: its stdout is read line by
/// line, it is signalled with kill(2), and it is killed (and reaped) on dispose if still running.
/// </summary>
/// <remarks>
/// It is started through <c>env --default-signal=INT</c>: a process started with SIGINT ignored (a
/// test run from a non-interactive shell's background job) passes that on, and .NET then never
/// delivers SIGINT, as a shell's Ctrl-C does not reach such a program either.
/// </remarks>
internal sealed class ChildProgram : IDisposable
{
    /// <summary>How long any one wait may take: generous, for a loaded 2-core machine. Not a timing assertion.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly List<string> _seen = new();
    private readonly ConcurrentQueue<string> _stderr = new();

    private ChildProgram(Process process) => _process = process;

    /// <summary>Every line read so far, in order.</summary>
    public IReadOnlyList<string> Lines => _seen;

    /// <summary>What the child wrote to stderr.</summary>
    public string StandardError => string.Join('\n', _stderr);

    public static ChildProgram Start(string mode, IReadOnlyDictionary<string, string?> environment)
    {
        string program = Path.Combine(AppContext.BaseDirectory, "Tulip.TestProgram");
        Assert.True(File.Exists(program), $"{program} is missing: Tulip.Tests references tests/Tulip.TestProgram, which builds it there");
        var psi = new ProcessStartInfo("/usr/bin/env")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.ArgumentList.Add("--default-signal=INT");
        psi.ArgumentList.Add(program);
        psi.ArgumentList.Add(mode);
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        var child = new ChildProgram(Process.Start(psi)!);
        child._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                child._lines.CompleteAdding();
            }
            else
            {
                child._lines.Add(e.Data);
            }
        };
        child._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                child._stderr.Enqueue(e.Data);
            }
        };
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Reads lines until <paramref name="line"/>; fails if stdout ends or patience runs out first.</summary>
    public void WaitForLine(string line)
    {
        using var cts = new CancellationTokenSource(Patience);
        try
        {
            foreach (string next in _lines.GetConsumingEnumerable(cts.Token))
            {
                _seen.Add(next);
                if (next == line)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        Assert.Fail($"the child never printed \"{line}\"; stdout: [{string.Join(" | ", _seen)}]; stderr: {StandardError}");
    }

    /// <summary>Sends <paramref name="signal"/> to the child with kill(2).</summary>
    public void Signal(int signal) => Assert.Equal(0, Interop.Kill(_process.Id, signal));

    /// <summary>Waits for the child to end and for the rest of its stdout; returns its exit status (128 + N when killed by signal N).</summary>
    public int WaitForExit()
    {
        Assert.True(_process.WaitForExit(Patience), $"the child did not end; stdout: [{string.Join(" | ", _seen)}]");
        _process.WaitForExit(); // drains the redirected streams
        foreach (string next in _lines.GetConsumingEnumerable())
        {
            _seen.Add(next);
        }

        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        _lines.Dispose();
    }
}
