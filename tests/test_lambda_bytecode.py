"""devtools.lambda_package: the bytecode Zappa's zip callback adds is the bytecode a fresh,
read-only interpreter uses, compiled by the runtime's own Python and refused for another."""
import os
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import click
import pytest
from import_probe import PROBE, REPORT, read_report

from devtools import lambda_package as lambda_bytecode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNCHECKED, CHECKED = 0b01, 0b11  # PEP 552 flags: hash-based, and whether the source is checked

MODULES = {
    "app.py": "from pkg.views import ANSWER\n",
    "pkg/__init__.py": "",
    "pkg/views.py": "ANSWER = 42\n",
    "zappa_settings.py": "STAGE = 'dev'\n",
    "pkg/templates/py2_era.py": "print 'not Python 3'\n",
    "pkg/data.json": "{}",
}


def zappa_like_zip(path):
    """A zip laid out as Zappa writes one: sources, no bytecode, no file times that matter."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in MODULES.items():
            archive.writestr(name, text)
    return path


def probe(directory, code):
    """Run `code` in a fresh interpreter importing only from `directory`, bytecode writing off."""
    run = subprocess.run([sys.executable, "-S", "-B", "-c", PROBE + code + REPORT], cwd=directory,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(directory)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return read_report(run.stdout)


def pyc_flags(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8)[4:8], "little")


def test_added_bytecode_is_what_a_fresh_interpreter_loads(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    count, invalid = lambda_bytecode.add_bytecode(archive)
    assert (count, invalid) == (4, ["pkg/templates/py2_era.py"])
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        z.extractall(unpacked)
    tag = sys.implementation.cache_tag
    assert {f"pkg/__pycache__/views.{tag}.pyc", f"__pycache__/zappa_settings.{tag}.pyc"} <= names
    assert set(MODULES) <= names, "the sources stay, for tracebacks"
    assert pyc_flags(unpacked / "pkg" / "__pycache__" / f"views.{tag}.pyc") == UNCHECKED
    assert pyc_flags(unpacked / "__pycache__" / f"zappa_settings.{tag}.pyc") == CHECKED

    report = probe(unpacked, "import app, zappa_settings\n")
    assert report["dont_write_bytecode"] is True
    assert report["compiled_from_source"] == []
    file, cached = report["modules"]["pkg.views"]
    assert file == str(unpacked / "pkg" / "views.py") and os.path.exists(cached)
    assert not (unpacked / "pkg" / "templates" / "__pycache__").exists()


def test_an_edited_settings_file_is_compiled_again_not_shadowed(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    lambda_bytecode.add_bytecode(archive)
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(archive) as z:
        z.extractall(unpacked)
    (unpacked / "zappa_settings.py").write_text("STAGE = 'edited'\n")

    report = probe(unpacked, "import app, zappa_settings\nassert zappa_settings.STAGE == 'edited'\n")
    assert report["compiled_from_source"] == [str(unpacked / "zappa_settings.py")]


def test_without_the_bytecode_every_module_is_compiled_at_each_start(tmp_path):
    """The control: the probe does see compilation when there is no bytecode."""
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(zappa_like_zip(tmp_path / "package.zip")) as z:
        z.extractall(unpacked)
    report = probe(unpacked, "import app\n")
    assert sorted(os.path.relpath(p, unpacked) for p in report["compiled_from_source"]) == [
        "app.py", os.path.join("pkg", "__init__.py"), os.path.join("pkg", "views.py")]


def test_a_zip_that_already_holds_bytecode_is_refused(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("pkg/__pycache__/views.cpython-39.pyc", b"old")
    with pytest.raises(lambda_bytecode.BytecodeError, match="exclude"):
        lambda_bytecode.add_bytecode(archive)


def test_bytecode_for_another_runtime_is_compiled_by_that_runtimes_python(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    other = "python3.{}".format(sys.version_info.minor + 1)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    before = archive.read_bytes()
    # An interpreter that is not the runtime it stands for is refused before anything is added.
    with pytest.raises(lambda_bytecode.PackageError, match=f"runtime is {other}.*is {lambda_bytecode.this_runtime()}"):
        lambda_bytecode.add_bytecode_for(other, archive, python=str(python))
    assert archive.read_bytes() == before
    with pytest.raises(lambda_bytecode.PackageError, match="make runtime-python"):
        lambda_bytecode.add_bytecode_for(other, archive, python=str(tmp_path / "none"))

    # The runtime's own interpreter compiles in its own process: its cache tag, its count.
    tag, count, invalid = lambda_bytecode.add_bytecode_for(lambda_bytecode.this_runtime(), archive,
                                                           python=str(python))
    assert (tag, count, invalid) == (sys.implementation.cache_tag, 4, ["pkg/templates/py2_era.py"])


def test_the_zip_callback_refuses_a_package_with_a_websocket_handler_or_development_files(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("handler.py", "")
    cli = SimpleNamespace(runtime=lambda_bytecode.this_runtime(), zip_path=str(archive))
    lambda_bytecode.finish_zip(cli)

    for name, text in (("zappa_settings.py", "WEBSOCKET_HANDLER_MODULE='build.venv.zappa.handler'\n"),
                       ("devtools/local.py", "")):
        bad = tmp_path / f"bad-{len(text)}.zip"
        with zipfile.ZipFile(bad, "w") as z:
            for existing, content in {**MODULES, "handler.py": "", name: text}.items():
                z.writestr(existing, content)
        with pytest.raises(click.ClickException, match="WebSocket|development files"):
            lambda_bytecode.finish_zip(SimpleNamespace(runtime=cli.runtime, zip_path=str(bad)))


def test_the_stage_runtime_follows_extends(tmp_path):
    script = os.path.join(ROOT, "devtools", "lambda_package.py")
    settings = tmp_path / "zappa_settings.json"
    settings.write_text('{"dev": {"runtime": "python3.13", "s3_bucket": "a"}, '
                        '"production": {"extends": "dev", "s3_bucket": "b"}}')
    assert lambda_bytecode.stage_runtime(settings, "production") == "python3.13"
    assert lambda_bytecode.stage_config(settings, "production")["s3_bucket"] == "b"
    printed = subprocess.run([sys.executable, script, "runtime", "production"], capture_output=True, text=True,
                             timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip().startswith("python3.")
