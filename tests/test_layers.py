"""The shape of the code, read with `ast` (nothing is imported): arrows point down only.

    web, work          -> domain, storage, telephony, config, clock, logs
    storage, telephony -> domain, config, clock, logs
    domain             -> config, clock (and no Flask, Twilio, PynamoDB or AWS SDK)

Each layer may import itself. `callback/__init__.py` (create_app, which wires everything)
and `app.py` are exempt. Imports inside functions count like the others. Production code
never imports the development tools, the tests or the benchmarks; no two `callback`
modules import each other, however indirectly; no production module is over 400 lines.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 400

BASE = {"callback.config", "callback.clock", "callback.logs", "callback.metrics"}
LAYERS = {
    "domain": {"callback.domain", "callback.config", "callback.clock"},
    "storage": {"callback.storage", "callback.domain"} | BASE,
    "telephony": {"callback.telephony", "callback.domain"} | BASE,
    "web": {"callback.web", "callback.domain", "callback.storage", "callback.telephony"} | BASE,
    "work": {"callback.work", "callback.domain", "callback.storage", "callback.telephony"} | BASE,
}
# (importing module, imported module) allowed against the rule above: none today.
EXCEPTIONS = set()
DOMAIN_FORBIDDEN = {"flask", "werkzeug", "twilio", "pynamodb", "boto3", "botocore"}
DEVELOPMENT = {"devtools", "tests", "bench"}


def production_files():
    """Paths (relative to the repository) of every production module."""
    found = ["app.py"]
    for folder, dirs, files in os.walk(os.path.join(ROOT, "callback")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in sorted(files) if f.endswith(".py")]
    return found


def module_name(path):
    parts = path[:-len(".py")].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = production_files()
MODULES = {module_name(path): path for path in FILES}


def is_package(module):
    return MODULES.get(module, "").endswith("__init__.py")


def ancestors(module):
    """The packages above a module: 'a.b.c' -> ['a', 'a.b']."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports(module):
    """(target, explicit) for every import in a module, at any depth. A target is a dotted
    name; `explicit` is False for a package named only as the path to its submodules
    (`from a import b` where b is a module), which Python runs before the module anyway."""
    path = MODULES[module]
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read(), path)
    package = module if is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
            found += [(name, True) for name in submodules]
            found.append((base, len(submodules) < len(node.names)))
    return found


def ours(target):
    """The `callback` module a dotted name refers to (its longest known prefix), or None."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def dependencies(module):
    """The `callback` modules importing `module` runs: each import's target, and the packages
    above it, except those above `module` itself (already running when it is imported)."""
    above = set(ancestors(module)) | {module}
    found = set()
    for target, explicit in imports(module):
        name = ours(target)
        if name is None:
            continue
        if explicit or name not in above:
            found.add(name)
        found |= {package for package in ancestors(name) if package not in above}
    found.discard(module)
    return found


def within(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "callback" and parts[1] in LAYERS else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) == "domain"))
def test_the_domain_imports_no_framework_and_nothing_above_it(module):
    targets = [target for target, explicit in imports(module) if explicit]
    frameworks = sorted(t for t in targets if t.split(".")[0] in DOMAIN_FORBIDDEN)
    assert frameworks == [], f"{MODULES[module]} imports {frameworks}"
    above = sorted(t for t in targets if t.split(".")[0] == "callback" and not within(t, LAYERS["domain"]))
    assert above == [], f"{MODULES[module]} imports {above}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m)))
def test_arrows_point_down_only(module):
    allowed = LAYERS[layer_of(module)]
    wrong = sorted(name for target, explicit in imports(module) if explicit
                   and (name := ours(target) or target).split(".")[0] == "callback"
                   and not within(name, allowed) and (module, name) not in EXCEPTIONS)
    assert wrong == [], f"{MODULES[module]} ({layer_of(module)}) imports {wrong}: allowed {sorted(allowed)}"


def test_the_base_modules_import_only_each_other():
    for module in sorted(BASE):
        wrong = sorted(t for t, explicit in imports(module)
                       if explicit and t.split(".")[0] == "callback" and not within(t, BASE))
        assert wrong == [], f"{MODULES[module]} imports {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_production_never_imports_development_tools(module):
    wrong = sorted(t for t, _ in imports(module) if t.split(".")[0] in DEVELOPMENT)
    assert wrong == [], f"{MODULES[module]} imports {wrong}"


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_between(graph, start, goal, members):
    """One import chain from start to goal inside a cycle, for the failure message."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for other in sorted(graph[path[-1]] & members):
            if other == goal:
                return path + [goal]
            if other not in seen:
                seen.add(other)
                paths.append(path + [other])
    return [start, goal]


def test_no_import_cycles():
    graph = {module: dependencies(module) for module in MODULES}
    found = []
    for component in cycles(graph):
        members, first = set(component), component[0]
        back = next(m for m in sorted(members) if first in graph[m])
        found.append(" -> ".join(path_between(graph, first, back, members) + [first]))
    assert found == [], "import cycles:\n" + "\n".join(found)


@pytest.mark.parametrize("path", FILES)
def test_no_production_module_is_over_400_lines(path):
    with open(os.path.join(ROOT, path)) as f:
        lines = sum(1 for _ in f)
    assert lines <= MAX_LINES, f"{path} has {lines} lines (at most {MAX_LINES}): split it"
