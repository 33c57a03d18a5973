using System;
using System.Collections.Generic;

namespace Tulip;

/// <summary>
/// Several exceptions raised together: what a <see cref="TaskGroup"/> throws when its tasks (or its
/// body) fail. Python's <c>ExceptionGroup</c>; an <see cref="AggregateException"/>, whose
/// <see cref="AggregateException.InnerExceptions"/> are the errors in the order they happened.
/// </summary>
public class ExceptionGroup : AggregateException
{
    /// <summary>Creates an empty group with the default message.</summary>
    public ExceptionGroup() : base("Several errors occurred.") { }

    /// <summary>Creates an empty group with a message.</summary>
    public ExceptionGroup(string message) : base(message) { }

    /// <summary>Creates a group of one exception.</summary>
    public ExceptionGroup(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates a group of <paramref name="innerExceptions"/>.</summary>
    public ExceptionGroup(string message, IEnumerable<Exception> innerExceptions) : base(message, innerExceptions) { }
}
