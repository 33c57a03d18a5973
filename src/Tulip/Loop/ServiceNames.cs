using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Tulip;

/// <summary>
/// Service names to ports and back, from <c>/etc/services</c>, as getaddrinfo and getnameinfo use
/// them: .NET has no API for it. The file is read once, on first use; a missing or unreadable file
/// means no names are known (numeric ports keep working).
/// </summary>
internal static class ServiceNames
{
    /// <summary>The services database read by the C library on Linux.</summary>
    internal const string DefaultPath = "/etc/services";

    private static readonly Lazy<Table> s_table = new(static () => Table.Load(DefaultPath));

    /// <summary>The port of <paramref name="name"/> (or an alias) for "tcp" or "udp", if the database has one.</summary>
    public static int? Lookup(string name, string protocol) => s_table.Value.Lookup(name, protocol);

    /// <summary>The service name of <paramref name="port"/> for "tcp" or "udp", if the database has one.</summary>
    public static string? NameOf(int port, string protocol) => s_table.Value.NameOf(port, protocol);

    /// <summary>A parsed services file.</summary>
    internal sealed class Table
    {
        private readonly Dictionary<(string Name, string Protocol), int> _ports = new();
        private readonly Dictionary<(int Port, string Protocol), string> _names = new();

        /// <summary>Reads <paramref name="path"/>; a file that cannot be read gives an empty table.</summary>
        public static Table Load(string path)
        {
            try
            {
                return Parse(File.ReadLines(path));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return new Table();
            }
        }

        /// <summary>
        /// Parses lines of services(5): <c>name port/protocol [aliases...] [# comment]</c>. The first
        /// entry of a name or a port wins, as the C library's lookups return the first match.
        /// </summary>
        public static Table Parse(IEnumerable<string> lines)
        {
            var table = new Table();
            foreach (var raw in lines)
            {
                int hash = raw.IndexOf('#');
                var line = hash >= 0 ? raw[..hash] : raw;
                var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 2)
                {
                    continue;
                }

                int slash = fields[1].IndexOf('/');
                if (slash <= 0
                    || !int.TryParse(fields[1].AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out int port)
                    || port > 65535)
                {
                    continue;
                }

                string protocol = fields[1][(slash + 1)..].ToLowerInvariant();
                table._names.TryAdd((port, protocol), fields[0]);
                for (int i = 0; i < fields.Length; i++)
                {
                    if (i != 1)
                    {
                        table._ports.TryAdd((fields[i], protocol), port);
                    }
                }
            }

            return table;
        }

        public int? Lookup(string name, string protocol) => _ports.TryGetValue((name, protocol), out int port) ? port : null;

        public string? NameOf(int port, string protocol) => _names.TryGetValue((port, protocol), out var name) ? name : null;
    }
}
