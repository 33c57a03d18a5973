using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Tulip.Tests.Samples;

/// <summary>
/// samples/Parallel run as a real process: the build beside the tests (Tulip.Tests references the sample), or
/// scripts/parallel (which builds it in Release first and execs it). Started through <c>env --default-signal=INT,TERM</c>
/// so a test run whose SIGINT is ignored (a background job) still hands the program default dispositions.
/// </summary>
internal sealed class ParallelProgram : IDisposable
{
    /// <summary>How long any one wait may take: generous, for a loaded 2-core machine (the script's first run builds). A hang guard, not a timing assertion.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(400);

    private readonly Process _process;
    private readonly Task<byte[]> _stdout;
    private readonly Task<byte[]> _stderr;

    private ParallelProgram(Process process)
    {
        _process = process;
        _stdout = ReadAllAsync(process.StandardOutput.BaseStream);
        _stderr = ReadAllAsync(process.StandardError.BaseStream);
    }

    public int Pid => _process.Id;

    /// <summary>Starts parallel with <paramref name="args"/> on loop <paramref name="loopKind"/>, and writes <paramref name="input"/> to its stdin (then EOF, unless <paramref name="keepStdinOpen"/>).</summary>
    public static ParallelProgram Start(string? loopKind, string input, bool viaScript = false, bool keepStdinOpen = false, params string[] args)
    {
        string program = viaScript ? Path.Combine(RepositoryRoot(), "scripts", "parallel") : Path.Combine(AppContext.BaseDirectory, "Parallel");
        Assert.True(File.Exists(program), $"{program} is missing: Tulip.Tests references samples/Parallel, which builds it there");
        var psi = new ProcessStartInfo("/usr/bin/env")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("--default-signal=INT,TERM");
        psi.ArgumentList.Add(program);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TULIP_LOOP"] = loopKind;
        var p = new ParallelProgram(Process.Start(psi)!);
        p._process.StandardInput.Write(input);
        p._process.StandardInput.Flush();
        if (!keepStdinOpen)
        {
            p._process.StandardInput.Close();
        }

        return p;
    }

    /// <summary>Runs parallel to its end and returns its exit status and output.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string? loopKind, string input, params string[] args)
    {
        using var p = Start(loopKind, input, args: args);
        return p.WaitForExit();
    }

    public void CloseStdin() => _process.StandardInput.Close();

    public void Signal(int signal) => Assert.Equal(0, Kill(_process.Id, signal));

    public (int ExitCode, string Stdout, string Stderr) WaitForExit()
    {
        Assert.True(_process.WaitForExit(Patience), "parallel did not exit within the hang guard");
        _process.WaitForExit(); // the output's end, too
        Assert.True(_stdout.Wait(Patience) && _stderr.Wait(Patience));
        return (_process.ExitCode, System.Text.Encoding.UTF8.GetString(_stdout.Result), System.Text.Encoding.UTF8.GetString(_stderr.Result));
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return dir!.FullName;
    }

    /// <summary>Live processes (zombies do not count: they run nothing, and an orphan's zombie is its adopter's to reap) whose command line holds <paramref name="token"/>.</summary>
    public static List<int> LiveProcessesWith(string token)
    {
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                char state = stat[stat.LastIndexOf(')') + 2];
                if (state != 'Z' && File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(token, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return found;
    }

    /// <summary>Whether <paramref name="pid"/> runs (exists and is not a zombie).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits (bounded) until <paramref name="path"/> exists; false if patience ran out.</summary>
    public static bool WaitForFile(string path)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!File.Exists(path))
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            Thread.Sleep(20);
        }

        return true;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
