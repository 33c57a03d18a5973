using System.Runtime.InteropServices;
using System.Text;
using Tulip;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// A subprocess protocol that records every call and checks asyncio's order as it goes: ConnectionMade first,
/// nothing after ConnectionLost, one PipeConnectionLost per fd, ProcessExited once and before ConnectionLost,
/// every pipe closed before ConnectionLost.
/// </summary>
internal sealed class SubprocessRecorder : SubprocessProtocol
{
    private readonly List<string> _violations = [];
    private readonly HashSet<int> _lostPipes = [];

    public SubprocessRecorder(IEventLoop loop)
    {
        Exited = loop.CreateFuture<VoidResult>();
        Lost = loop.CreateFuture<VoidResult>();
    }

    public ISubprocessTransport? Transport { get; private set; }

    public List<string> Events { get; } = [];

    public MemoryStream[] Output { get; } = [new(), new(), new()];

    public Dictionary<int, Exception?> PipeErrors { get; } = [];

    public Future<VoidResult> Exited { get; }

    public Future<VoidResult> Lost { get; }

    public int PauseCount { get; private set; }

    /// <summary>Called at the end of <see cref="ConnectionMade"/>, inside the transport's callback.</summary>
    public Action? AfterMade { get; init; }

    /// <summary>Called at the end of each <see cref="PipeDataReceived"/> with the fd, inside the transport's callback.</summary>
    public Action<int>? AfterData { get; init; }

    public string Text(int fd) => Encoding.UTF8.GetString(Output[fd].ToArray());

    public IReadOnlyList<string> Violations => _violations;

    public override void ConnectionMade(IBaseTransport transport)
    {
        Check(Events.Count == 0, "ConnectionMade is not first");
        Transport = (ISubprocessTransport)transport;
        Events.Add("made");
        AfterMade?.Invoke();
    }

    public override void PipeDataReceived(int fd, ReadOnlySpan<byte> data)
    {
        Check(Transport is not null, "data before ConnectionMade");
        Check(!Lost.Done, "data after ConnectionLost");
        Check(!_lostPipes.Contains(fd), $"data on fd {fd} after its PipeConnectionLost");
        Check(fd is 1 or 2, $"data on fd {fd}");
        Output[fd].Write(data);
        if (Events.Count == 0 || Events[^1] != $"data{fd}")
        {
            Events.Add($"data{fd}");
        }

        AfterData?.Invoke(fd);
    }

    public override void PipeConnectionLost(int fd, Exception? exception)
    {
        Check(Transport is not null, "PipeConnectionLost before ConnectionMade");
        Check(_lostPipes.Add(fd), $"PipeConnectionLost({fd}) twice");
        Check(!Lost.Done, "PipeConnectionLost after ConnectionLost");
        PipeErrors[fd] = exception;
        Events.Add($"pipe{fd}");
    }

    public override void ProcessExited()
    {
        Check(Transport is not null, "ProcessExited before ConnectionMade");
        Check(!Exited.Done, "ProcessExited twice");
        Check(Transport?.ReturnCode is not null, "ProcessExited with no return code");
        Events.Add("exited");
        Exited.TrySetResult(default);
    }

    public override void ConnectionLost(Exception? exception)
    {
        Check(Exited.Done, "ConnectionLost before ProcessExited");
        Check(exception is null, $"ConnectionLost({exception})");
        for (int fd = 0; fd <= 2; fd++)
        {
            Check(Transport?.GetPipeTransport(fd) is null || _lostPipes.Contains(fd), $"ConnectionLost before PipeConnectionLost({fd})");
        }

        Check(!Lost.Done, "ConnectionLost twice");
        Events.Add("lost");
        Lost.TrySetResult(default);
    }

    public override void PauseWriting() => PauseCount++;

    private void Check(bool condition, string violation)
    {
        if (!condition)
        {
            _violations.Add(violation);
        }
    }
}

internal static class SubprocessTestUtil
{
    /// <summary>Whether <paramref name="pid"/> is gone or at least not a zombie (reaped): /proc/PID/stat's state.</summary>
    public static bool IsReaped(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return true;
        }

        // "pid (comm) S ...": the state follows the last ')'.
        char state = stat[stat.LastIndexOf(')') + 2];
        return state != 'Z';
    }

    /// <summary>The pids of this process's children (zombies included) whose command line holds <paramref name="argument"/>.</summary>
    /// <remarks>A zombie's command line is gone, so every zombie "sleep" child counts: any test's zombie fails the test (no
    /// implementation may leave one, not even for a child whose loop closed before it exited).</remarks>
    public static List<int> ChildrenWithArgument(string argument)
    {
        var found = new List<int>();
        string me = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            try
            {
                var fields = StatFields(File.ReadAllText(Path.Combine(dir, "stat")));
                if (fields[1] == me && (fields[0] == "Z" || File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(argument, StringComparison.Ordinal)))
                {
                    // A zombie has no command line left: count every zombie child of ours that has this test's name.
                    if (fields[0] != "Z" || File.ReadAllText(Path.Combine(dir, "comm")).StartsWith("sleep", StringComparison.Ordinal))
                    {
                        found.Add(pid);
                    }
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return found;
    }

    /// <summary>
    /// A shell command that exits with <paramref name="code"/> once the file <c>Trigger</c> exists (the test creates it): a child
    /// that exits when the test says, with no pipe and no help from the loop, so the test can let it exit while the loop does
    /// not run. Delete the trigger afterwards.
    /// </summary>
    public static (string Command, string Trigger) ExitOnTrigger(int code)
    {
        string trigger = Path.Combine(Path.GetTempPath(), $"tulip-exit-{Guid.NewGuid():N}");
        return ($"while [ ! -e '{trigger}' ]; do sleep 0.01; done; exit {code}", trigger);
    }

    /// <summary>
    /// Lets the <see cref="ExitOnTrigger"/> child exit, and waits on this thread (not the loop's) until it has: a
    /// zombie, or reaped by the runtime. The wait is the exit itself, waitid(P_PID, WEXITED | WNOWAIT), which
    /// leaves the child unreaped; ECHILD means someone (the runtime's SIGCHLD handling) reaped it already.
    /// </summary>
    public static unsafe void TriggerExitAndWait(string trigger, int pid)
    {
        File.WriteAllText(trigger, "");
        Interop.SigInfo info;
        int rc;
        do
        {
            rc = Interop.WaitId(Interop.P_PID, pid, &info, Interop.WEXITED | Interop.WNOWAIT);
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == Interop.Errno.EINTR);

        Assert.True(rc == 0 || Marshal.GetLastPInvokeError() == Interop.Errno.ECHILD,
            $"waitid on child {pid} failed: errno {Marshal.GetLastPInvokeError()}");
        Assert.False(IsReaped(pid) && File.Exists($"/proc/{pid}/stat"), $"child {pid} did not exit");
    }

    /// <summary>/proc/PID/stat's fields after the command: [0] state, [1] ppid, [2] pgrp, [3] session.</summary>
    public static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    /// <summary>Runs a child to its end and returns its recorder (after ConnectionLost), asserting the order held and it was reaped.</summary>
    public static async LoopTask<SubprocessRecorder> RunToEnd(BaseEventLoop loop, string program, IReadOnlyList<string> arguments,
        SubprocessOptions? options = null, ReadOnlyMemory<byte>? input = null)
    {
        var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), program, arguments, options);
        if (transport.GetPipeTransport(0) is IWriteTransport stdin)
        {
            if (input is { } data)
            {
                stdin.Write(data.Span);
            }

            stdin.Close();
        }

        await recorder.Lost;
        AssertClean(recorder);
        return recorder;
    }

    public static void AssertClean(SubprocessRecorder recorder)
    {
        Assert.True(recorder.Violations.Count == 0, string.Join("; ", recorder.Violations) + " in " + string.Join(",", recorder.Events));
        Assert.Equal("made", recorder.Events[0]);
        Assert.Equal("lost", recorder.Events[^1]);
        Assert.True(IsReaped(recorder.Transport!.Pid), $"child {recorder.Transport.Pid} left a zombie");
    }
}
