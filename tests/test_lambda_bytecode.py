"""lambda_bytecode: the bytecode Zappa's zip callback adds is the bytecode a fresh,
read-only interpreter uses, and a package for another Python is refused."""
import os
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import click
import pytest
from import_probe import PROBE, REPORT, read_report

import lambda_bytecode

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


def test_a_package_for_another_python_is_refused_before_anything_is_added(tmp_path):
    archive = zappa_like_zip(tmp_path / "package.zip")
    before = archive.read_bytes()
    other = "python3.{}".format(sys.version_info.minor + 1)
    cli = SimpleNamespace(runtime=other, zip_path=str(archive))
    this = lambda_bytecode.this_runtime()
    with pytest.raises(click.ClickException, match=f"runtime is {other}.*built with {this}"):
        lambda_bytecode.zappa_zip_callback(cli)
    assert archive.read_bytes() == before

    lambda_bytecode.zappa_zip_callback(SimpleNamespace(runtime=this, zip_path=str(archive)))
    assert archive.read_bytes() != before


def test_make_package_checks_the_stage_runtime_before_building(tmp_path):
    script = os.path.join(ROOT, "lambda_bytecode.py")
    ok = subprocess.run([sys.executable, script, "production"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr

    settings = tmp_path / "zappa_settings.json"
    settings.write_text('{"dev": {"runtime": "python2.7"}, "production": {"extends": "dev"}}')
    refused = subprocess.run([sys.executable, script, "production", str(settings)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "runtime is python2.7" in refused.stderr and "make package PYTHON=python2.7" in refused.stderr
