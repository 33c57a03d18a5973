using System;
using System.Collections.Generic;
using System.Text;
using Tulip;

namespace LineProtocolTesting;

/// <summary>
/// A line-based protocol: it splits the stream at '\n', answers each "PING" with "PONG", and
/// closes the connection after "QUIT". Data may arrive in any chunks, a line split across several
/// DataReceived calls or several lines in one, so it buffers until it sees the newline.
/// </summary>
public sealed class LineProtocol : Protocol
{
    private readonly StringBuilder _partial = new();
    private ITransport? _transport;

    /// <summary>The complete lines received so far.</summary>
    public List<string> Lines { get; } = new();

    /// <inheritdoc/>
    public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

    /// <inheritdoc/>
    public override void DataReceived(ReadOnlySpan<byte> data)
    {
        _partial.Append(Encoding.UTF8.GetString(data));
        string buffered = _partial.ToString();
        int newline;
        while ((newline = buffered.IndexOf('\n', StringComparison.Ordinal)) >= 0)
        {
            LineReceived(buffered[..newline].TrimEnd('\r'));
            buffered = buffered[(newline + 1)..];
        }

        _partial.Clear().Append(buffered);
    }

    private void LineReceived(string line)
    {
        Lines.Add(line);
        switch (line)
        {
            case "PING":
                _transport!.Write("PONG\n"u8);
                break;
            case "QUIT":
                _transport!.Write("BYE\n"u8);
                _transport.Close();
                break;
        }
    }
}
