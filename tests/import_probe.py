"""Which modules a fresh interpreter compiled from source, as a Lambda cold start would.

`PROBE` goes first in a `python -S -B -c` script: it wraps importlib's
`SourceLoader.source_to_code`, which the import system calls only when a module has no
usable bytecode (missing, stale, or for another Python), and records the path of every
source it compiles. `REPORT` prints that list with each loaded module's file and
`__cached__`, as one `PROBE {json}` line that `read_report` finds in the output.
"""
import json

PROBE = r"""
import _frozen_importlib_external
_compiled_from_source = []
_source_to_code = _frozen_importlib_external.SourceLoader.source_to_code
def _recording_source_to_code(self, data, path, *, _optimize=-1):
    _compiled_from_source.append(path)
    return _source_to_code(self, data, path, _optimize=_optimize)
_frozen_importlib_external.SourceLoader.source_to_code = _recording_source_to_code
"""

REPORT = r"""
import json as _json, sys as _sys
print("PROBE " + _json.dumps({
    "compiled_from_source": _compiled_from_source,
    "dont_write_bytecode": _sys.dont_write_bytecode,
    "modules": {name: [getattr(module, "__file__", None), getattr(module, "__cached__", None)]
                for name, module in list(_sys.modules.items())},
}))
"""


def read_report(output):
    """The probe's report from a run's stdout."""
    [line] = [line for line in output.splitlines() if line.startswith("PROBE ")]
    return json.loads(line[len("PROBE "):])
