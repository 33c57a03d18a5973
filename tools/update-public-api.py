#!/usr/bin/env python3
"""Updates the pinned public API of the libraries from the code. See docs/PUBLIC_API.md.

    tools/update-public-api.py              # src/Tulip, src/Tulip.Testing, src/Tulip.Extras, src/Tulip.Hosting
    tools/update-public-api.py src/Tulip    # one library (its directory or its .csproj)

For each library, in this order:
  1. RS0017 (a declared symbol that no longer exists): builds the project and, for each RS0017 the
     analyzer reports, deletes the line from PublicAPI.Unshipped.txt, or, when the symbol was in
     PublicAPI.Shipped.txt, adds "*REMOVED*<symbol>" to PublicAPI.Unshipped.txt (the analyzer's
     convention for a removal to be released). The analyzer offers no code fix for RS0017 that
     `dotnet format` applies, so this step reads the build's diagnostics.
  2. RS0016 (a public symbol that is not declared): `dotnet format analyzers <project>
     --diagnostics RS0016 --severity info` applies the analyzer's code fix, which adds the symbol
     to PublicAPI.Unshipped.txt. One run per project: given Tulip.slnx, dotnet format
     (SDK 10.0.401) writes the fixes of only one project per run and still reports success.
Then it builds every library again and fails if any RS0016/RS0017 is left. Moving lines from
Unshipped to Shipped is a release decision and is never done here.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARIES = ["src/Tulip", "src/Tulip.Testing", "src/Tulip.Extras", "src/Tulip.Hosting"]
RS0017 = re.compile(
    r"^(?P<file>\S*PublicAPI\.(?P<kind>Shipped|Unshipped)\.txt)\((?P<line>\d+),\d+\): (?:error|warning) RS0017: "
    r"Symbol '(?P<symbol>.*)' is part of the declared API")
RS001X = re.compile(r": (?:error|warning) (RS0016|RS0017):")


def project_of(arg):
    path = arg.rstrip("/")
    if not path.endswith(".csproj"):
        path = os.path.join(path, os.path.basename(path) + ".csproj")
    if not os.path.isfile(os.path.join(ROOT, path)):
        sys.exit(f"update-public-api: no project at {path} (give a directory under src/ or a .csproj)")
    return path


def build(project):
    """The build's output lines (the build may fail: the diagnostics are what is wanted)."""
    run = subprocess.run(["dotnet", "build", project, "--nologo", "-clp:NoSummary"],
                         cwd=ROOT, capture_output=True, text=True)
    return run.returncode, run.stdout.splitlines() + run.stderr.splitlines()


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))


def remove_vanished(project):
    directory = os.path.join(ROOT, os.path.dirname(project))
    unshipped_path = os.path.join(directory, "PublicAPI.Unshipped.txt")
    _, output = build(project)
    vanished = {}
    for line in output:
        m = RS0017.match(line.strip())
        if m and os.path.samefile(os.path.dirname(os.path.join(ROOT, m["file"])), directory):
            vanished[(m["kind"], int(m["line"]))] = m["symbol"]
    if not vanished:
        return
    unshipped = read_lines(unshipped_path)
    drop = set()
    for (kind, number), symbol in sorted(vanished.items()):
        if kind == "Unshipped":
            if unshipped[number - 1].strip() != symbol:
                sys.exit(f"update-public-api: {unshipped_path}:{number} is not '{symbol}'; the file changed during the run")
            drop.add(number - 1)
            print(f"  removed (unshipped): {symbol}")
        else:
            unshipped.append("*REMOVED*" + symbol)
            print(f"  removed (shipped, recorded as *REMOVED*): {symbol}")
    write_lines(unshipped_path, [line for i, line in enumerate(unshipped) if i not in drop])


def declare_new(project):
    subprocess.run(["dotnet", "format", "analyzers", project, "--diagnostics", "RS0016", "--severity", "info"],
                   cwd=ROOT, check=True)


def main():
    projects = [project_of(arg) for arg in (sys.argv[1:] or LIBRARIES)]
    for project in projects:
        print(f"== {project}: symbols that are gone (RS0017)", flush=True)
        remove_vanished(project)
        print(f"== {project}: symbols that are new (RS0016)", flush=True)
        declare_new(project)
    left = []
    for project in projects:
        print(f"== {project}: checking", flush=True)
        code, output = build(project)
        left += sorted({line.strip() for line in output if RS001X.search(line)})
        if code != 0 and not left:
            print("\n".join(output), file=sys.stderr)
            sys.exit(f"update-public-api: {project} does not build, for another reason than its public API")
    if left:
        print("\n".join(left), file=sys.stderr)
        sys.exit("update-public-api: the public API files still disagree with the code (above)")
    subprocess.run(["git", "status", "--short", "--", "src/*/PublicAPI.*.txt"], cwd=ROOT)


if __name__ == "__main__":
    main()
