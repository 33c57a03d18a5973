namespace Tulip;

/// <summary>
/// A transport that carries the links of its server's list of clients, so the base loop's server
/// keeps it in a list threaded through the transports instead of a set: a client costs two
/// references and a flag instead of a <c>HashSet</c> entry and its share of the outgrown arrays the
/// set leaves on the large object heap (docs/PERFORMANCE.md, "Memory per idle connection").
/// </summary>
/// <remarks>
/// Only the server that accepted the transport sets these, on the loop thread. A transport from
/// outside the assembly does not implement it, and its server keeps it in a set instead.
/// </remarks>
internal interface IServerClient
{
    /// <summary>The client before this one in the server's list, or null for the first.</summary>
    ITransport? PreviousClient { get; set; }

    /// <summary>The client after this one in the server's list, or null for the last.</summary>
    ITransport? NextClient { get; set; }

    /// <summary>Whether this transport is in its server's list.</summary>
    bool IsServerClient { get; set; }
}
