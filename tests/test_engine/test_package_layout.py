"""The package's shape: data flows one way and no module imports itself back."""
import ast
import os.path as osp
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / 'mplug2'


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _modules():
    return {_module_name(path): path for path in PACKAGE.rglob('*.py')}


def _imports(name: str, path: Path, modules: dict) -> set:
    """mplug2 modules imported by ``name``, at module level or inside functions."""
    is_package = path.name == '__init__.py'
    package = name if is_package else name.rpartition('.')[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            candidates = [f'{module}.{alias.name}' for alias in node.names] + [module]
        else:
            continue
        for candidate in candidates:
            # the longest mplug2 module the import names (a sub-module or the module itself)
            while candidate and candidate not in modules:
                candidate = candidate.rpartition('.')[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def _import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_datasets_never_import_models():
    for path in (PACKAGE / 'datasets').rglob('*.py'):
        text = path.read_text(encoding='utf-8')
        assert 'mplug2.models' not in text, f'{path} mentions mplug2.models'
        assert 'from ..models' not in text and 'from ...models' not in text, path


def test_no_import_circle():
    """No chain of imports (module level or deferred inside a function) leads from a module
    back to itself, except through the package ``__init__`` files that re-export their own
    sub-modules."""
    graph = _import_graph()

    def is_parent(package: str, module: str) -> bool:
        return module.startswith(package + '.')

    # A package __init__ importing its own sub-modules is how packages re-export: keep those
    # edges out, a sub-module importing an unrelated package back is still found.
    edges = {name: {t for t in targets if not is_parent(name, t)} for name, targets in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 'open':
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, '\n'.join(' -> '.join(cycle) for cycle in cycles)


def test_the_import_graph_sees_real_imports():
    """The checker itself: known edges are found (relative and absolute imports)."""
    graph = _import_graph()
    assert 'mplug2.registry' in graph['mplug2.models.multimodal.qa']
    assert 'mplug2.models.multimodal.mplug2' in graph['mplug2.models.multimodal.qa']
    assert 'mplug2.models.utils.momentum' in graph['mplug2.models.heads.itc_head']
    assert osp.isfile(PACKAGE / 'models' / 'multimodal' / 'retriever.py')
