"""Bytecode for the Lambda package: Zappa's `zip` callback, and a runtime check for `make package`.

Zappa leaves `__pycache__/` out of the zip, and a Lambda's code folder is read-only, so
without this every cold start compiles every module it imports, again and again. After
Zappa builds the zip (for `zappa package`, `deploy` and `update` alike), this compiles each
module in it with the Python running Zappa and adds the `.pyc` files beside the sources,
which stay so tracebacks keep their lines. Bytecode belongs to one Python minor version,
hence the refusal when that Python is not the stage's Lambda runtime.

Zip entries keep no file times, so timestamp-checked `.pyc` files would be ignored once
unpacked: they are compiled "unchecked-hash", read without looking at the source. The one
file people edit inside an unpacked package, Zappa's per-stage `zappa_settings.py`, is
compiled "checked-hash" instead, so an edited copy is never shadowed by stale bytecode.
"""
import json
import os
import py_compile
import sys
import tempfile
import warnings
import zipfile
from importlib.util import cache_from_source

CHECKED = {"zappa_settings.py"}


class BytecodeError(Exception):
    """The package cannot get bytecode a Lambda would use."""


def this_runtime():
    """The Lambda runtime name matching the running Python, e.g. 'python3.11'."""
    return "python{}.{}".format(*sys.version_info[:2])


def check_runtime(runtime):
    """Refuse to build for a Lambda runtime other than the running Python."""
    if runtime != this_runtime():
        raise BytecodeError(
            f"the Lambda runtime is {runtime} but the package is being built with {this_runtime()}: "
            f"its bytecode would be ignored there (every cold start would compile every module again) "
            f"and its compiled dependencies would not load. Build with {runtime}: "
            f"make package PYTHON={runtime} (remove build/lambda-venv first if another Python made it), "
            f"or change `runtime` in zappa_settings.json.")


def stage_runtime(settings_path, stage):
    """A stage's `runtime` in zappa_settings.json, following `extends`; Zappa's default
    when none is set is the Python running it."""
    with open(settings_path) as f:
        stages = json.load(f)
    config = stages[stage]
    while "runtime" not in config and "extends" in config:
        config = stages[config["extends"]]
    return config.get("runtime", this_runtime())


def add_bytecode(zip_path):
    """Compile every module in the zip for this Python and add the `.pyc` files to it.

    Returns (number of modules compiled, sources that are not valid Python for it)."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        if any(name.endswith(".pyc") for name in names):
            raise BytecodeError(f"{zip_path} already holds .pyc files, of unknown Python and "
                                  f"invalidation mode: keep '*.pyc' and '__pycache__' in `exclude`")
        sources = [name for name in names if name.endswith(".py")]
        with tempfile.TemporaryDirectory() as tmp:
            compiled, invalid = [], []
            for name in sources:
                source = archive.extract(name, tmp)
                cached = cache_from_source(name, optimization="")
                mode = (py_compile.PycInvalidationMode.CHECKED_HASH if name in CHECKED
                        else py_compile.PycInvalidationMode.UNCHECKED_HASH)
                try:
                    with warnings.catch_warnings():
                        # Third-party sources' own SyntaxWarnings are not ours to print.
                        warnings.simplefilter("ignore")
                        py_compile.compile(source, cfile=os.path.join(tmp, cached), dfile=name,
                                           doraise=True, optimize=0, invalidation_mode=mode)
                except py_compile.PyCompileError:
                    # Not importable by this Python either; nothing a cold start would load.
                    invalid.append(name)
                    continue
                compiled.append(cached)
            with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as out:
                for cached in compiled:
                    info = zipfile.ZipInfo(cached, date_time=(1980, 1, 1, 0, 0, 0))
                    info.create_system = 3
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(os.path.join(tmp, cached), "rb") as f:
                        out.writestr(info, f.read())
    return len(compiled), invalid


def zappa_zip_callback(cli):
    """Zappa's `callbacks.zip` hook: runs once Zappa has written the zip, before any upload."""
    import click

    try:
        check_runtime(cli.runtime)
        count, invalid = add_bytecode(cli.zip_path)
    except BytecodeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added bytecode for {this_runtime()} ({sys.implementation.cache_tag}) "
               f"of {count} modules to {os.path.basename(cli.zip_path)}")
    if invalid:
        click.echo(f"Not valid {this_runtime()}, left as source only: {', '.join(invalid)}")


def main(argv=None):
    """`python lambda_bytecode.py [STAGE [SETTINGS]]`: exit 1 unless this Python is STAGE's runtime."""
    args = sys.argv[1:] if argv is None else argv
    stage = args[0] if args else "dev"
    settings = args[1] if len(args) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "zappa_settings.json")
    try:
        check_runtime(stage_runtime(settings, stage))
    except BytecodeError as exc:
        print(f"make package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
