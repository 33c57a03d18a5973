using System;
using System.Collections.Generic;
using System.Globalization;

namespace Tulip.Samples.Parallel;

/// <summary>What <c>parallel [-j N] [--timeout SECONDS]</c> was asked to do.</summary>
internal sealed record ParallelSettings
{
    /// <summary>How many jobs run at once, at least 1. Defaults to the number of cores.</summary>
    public int Jobs { get; init; } = Environment.ProcessorCount;

    /// <summary>Seconds a job may run before its process group gets SIGTERM; null: no limit.</summary>
    public double? Timeout { get; init; }

    /// <summary>Seconds after SIGTERM before a job's group that is still alive gets SIGKILL.</summary>
    public double KillDelay { get; init; } = 2.0;

    /// <summary>The shell each command line runs in, as <c>SHELL -c LINE</c>.</summary>
    public string Shell { get; init; } = "/bin/sh";

    public const string Usage = "usage: parallel [-j N] [--timeout SECONDS] < COMMANDS";

    public const string Help = Usage + """


        Runs each line of standard input as a shell command (/bin/sh -c LINE; empty lines are skipped),
        at most N at once, on the Tulip loop TULIP_LOOP names (epoll, poll, io_uring or proactor).

          -j N, --jobs N       run at most N jobs at once (N >= 1; default: the number of cores)
          --timeout SECONDS    send a job's process group SIGTERM after SECONDS, then SIGKILL 2 s
                               later if it is still alive (SECONDS > 0, may have a fraction)
          -h, --help           print this help and exit 0

        Each job runs in its own process group with standard input from /dev/null. Its standard output
        and standard error are kept until it ends, then written whole, in input order.
        Exit status: the number of jobs that failed (non-zero exit, killed by a signal, or could not
        start), at most 101; 2 for bad arguments or an unknown TULIP_LOOP; on SIGTERM or SIGINT every
        running job's group is terminated the same way, and the exit status is 128 + the signal's number.
        """;

    /// <summary>Parses the arguments; null with <paramref name="error"/> set when they are wrong, or with both null for --help.</summary>
    public static ParallelSettings? Parse(IReadOnlyList<string> args, out string? error, out bool help)
    {
        var settings = new ParallelSettings();
        error = null;
        help = false;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? inline = null;
            string name = arg;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is var eq and > 0)
            {
                name = arg[..eq];
                inline = arg[(eq + 1)..];
            }
            else if (arg.StartsWith("-j", StringComparison.Ordinal) && arg.Length > 2)
            {
                name = "-j";
                inline = arg[2..];
            }

            switch (name)
            {
                case "-h" or "--help" when inline is null:
                    help = true;
                    return null;

                case "-j" or "--jobs":
                    if (!TryValue(args, ref i, inline, name, out string? jobsText, out error))
                    {
                        return null;
                    }

                    if (!int.TryParse(jobsText, NumberStyles.None, CultureInfo.InvariantCulture, out int jobs) || jobs < 1)
                    {
                        error = $"parallel: {name} wants a whole number of jobs, at least 1, not '{jobsText}'.";
                        return null;
                    }

                    settings = settings with { Jobs = jobs };
                    break;

                case "--timeout":
                    if (!TryValue(args, ref i, inline, name, out string? timeoutText, out error))
                    {
                        return null;
                    }

                    if (!double.TryParse(timeoutText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double timeout)
                        || !double.IsFinite(timeout) || timeout <= 0)
                    {
                        error = $"parallel: --timeout wants a number of seconds greater than 0 (such as 0.5 or 30), not '{timeoutText}'.";
                        return null;
                    }

                    settings = settings with { Timeout = timeout };
                    break;

                default:
                    error = arg.StartsWith('-')
                        ? $"parallel: unknown option '{arg}'."
                        : $"parallel: unexpected argument '{arg}': the commands are read from standard input, one a line.";
                    return null;
            }
        }

        return settings;
    }

    private static bool TryValue(IReadOnlyList<string> args, ref int i, string? inline, string name, out string? value, out string? error)
    {
        error = null;
        value = inline;
        if (value is not null)
        {
            return true;
        }

        if (i + 1 >= args.Count)
        {
            error = $"parallel: {name} needs a value.";
            return false;
        }

        value = args[++i];
        return true;
    }
}
