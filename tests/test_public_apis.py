"""Public APIs of our libraries only (DESIGN.md, "A lesson we paid for"): the app's code uses no
private (single leading underscore) name of flask, werkzeug, peewee, flask-login, flask-mail,
flask-limiter, flask-wtf, apscheduler or the `email` package.

The scan first reads the libraries' own sources and collects every underscored name they
define (functions, methods, classes, attributes they assign, private modules) and the
underscored keywords they read out of **kwargs. Then, in every module of the app (each .py at
the top level, and every package but bench/ and tests/):

- `from <library>... import _x`, or importing a library's private module, is a use;
- `<base>._x` is a use when `_x` is one of the libraries' private names, or when `<base>` is a
  library module or object imported by name. Only two bases count as ours: one of our own
  modules, and `self`/`cls` in a class with no library class among its ancestors. So an
  underscored helper of ours that shares its name with a library's private one is reported
  when reached through anything else: rename it (a clash the scan cannot tell apart from a
  real use must not pass silently);
- a method or class attribute, in a class descending from a library class, named like one
  of the libraries' private names overrides it, and is a use;
- a keyword argument naming a private keyword a library reads (`__no_default__`), or a
  getattr/setattr/hasattr/delattr string naming a library's private name, is a use.

Dunder names (`__init__`, `__name__`) are not private. Our own underscored names are fine.
"""
import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# peewee's distribution ships playhouse (its pool, db_url, migrations) beside peewee.py.
LIBRARIES = ("flask", "werkzeug", "peewee", "playhouse", "flask_login", "flask_mail", "flask_limiter",
             "flask_wtf", "apscheduler", "email", "limits")
NOT_THE_APP = {"bench", "tests"}
ATTRIBUTE_FUNCTIONS = {"getattr", "setattr", "hasattr", "delattr"}


def is_private(name: str) -> bool:
    """A single leading underscore: `_x`, not a dunder like `__init__`."""
    return name.startswith("_") and not name.startswith("__")


def is_library_module(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in LIBRARIES


# ---- what the libraries define ----------------------------------------------------------------

@dataclass(frozen=True)
class LibraryNames:
    names: frozenset[str]  # private names the libraries define
    keywords: frozenset[str]  # underscored keywords they read from **kwargs
    files: int


def library_sources(package: str) -> list[tuple[Path, tuple[str, ...]]]:
    """The package's source files, each with its module path ("email", "_policybase")."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} is not installed"
    if not spec.submodule_search_locations:
        return [(Path(spec.origin), (package,))]
    return sorted((path, (package, *path.relative_to(location).with_suffix("").parts))
                  for location in spec.submodule_search_locations for path in Path(location).rglob("*.py"))


@functools.cache
def library_names() -> LibraryNames:
    names, keywords, files = set(), set(), 0
    for package in LIBRARIES:
        for path, module in library_sources(package):
            files += 1
            names.update(part for part in module if is_private(part))  # private modules
            for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.alias):
                    names.add((node.asname or node.name).split(".")[-1])
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                        and node.func.attr in ("pop", "get", "setdefault") and _string(node.args[0]):
                    keywords.add(node.args[0].value)  # kwargs.pop("__no_default__", None)
                elif isinstance(node, ast.Compare) and _string(node.left) \
                        and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                    keywords.add(node.left.value)  # if "_private" in kwargs
    return LibraryNames(frozenset(n for n in names if is_private(n)),
                        frozenset(k for k in keywords if k.startswith("_")), files)


def _string(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# ---- what the app is ----------------------------------------------------------------------------

def app_files() -> list[Path]:
    """Every module of the app: the top-level .py files and every package but bench/ and tests/."""
    files = sorted(ROOT.glob("*.py"))
    for folder in sorted(ROOT.iterdir()):
        if folder.is_dir() and folder.name not in NOT_THE_APP and (folder / "__init__.py").exists():
            files += sorted(folder.rglob("*.py"))
    return files


def is_our_module(dotted: str) -> bool:
    """Whether `practice.models` (say) is a module or package of the app."""
    if not dotted or dotted.startswith(".") or dotted.split(".")[0] in NOT_THE_APP:
        return False
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_of(path: Path) -> str:
    """The package a module of the app is in ("practice", "blueprints.clinic"; "" at the top)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def defined_names(statement: ast.stmt) -> list[str]:
    """The names a statement in a class body defines (methods, nested classes, attributes)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    else:
        return []
    return [target.id for target in targets if isinstance(target, ast.Name)]


def class_bases(trees: list[ast.Module]) -> dict[str, list[ast.expr]]:
    """Our classes by name, with their base expressions (every class of that name, in any module)."""
    bases: dict[str, list[ast.expr]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, []).extend(node.bases)
    return bases


# ---- the scan ----------------------------------------------------------------------------------------

class Scan(ast.NodeVisitor):
    """One module's uses of the libraries' private names, as "line: what" strings."""

    def __init__(self, tree: ast.Module, *, package: str, classes: dict[str, list[ast.expr]],
                 library: LibraryNames):
        self.package, self.classes, self.library = package, classes, library
        self.found: list[str] = []
        self.class_stack: list[bool] = []  # for each enclosing class: does it descend from a library class?
        self.origin: dict[str, str] = {}  # local name -> the module it came from ("flask_login.utils")
        self.modules: dict[str, str] = {}  # local name -> the module it is, when it is one of ours
        for node in ast.walk(tree):  # imports anywhere in the module (some are inside functions)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    module = alias.name if alias.asname else local
                    self.origin[local] = module
                    if is_our_module(module):
                        self.modules[local] = module
            elif isinstance(node, ast.ImportFrom):
                module = self._absolute(node)
                for alias in node.names:
                    local = alias.asname or alias.name
                    self.origin[local] = module
                    if is_our_module(f"{module}.{alias.name}"):
                        self.modules[local] = f"{module}.{alias.name}"
        self.visit(tree)

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
        return ".".join(parts + ([node.module] if node.module else []))

    def report(self, node, what: str) -> None:
        self.found.append(f"{node.lineno}: {what}")

    # where a name comes from
    def _root_module(self, node) -> str | None:
        """The module the expression's leftmost name was imported from, if it was imported."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return self.origin.get(node.id) if isinstance(node, ast.Name) else None

    def _our_module(self, node) -> str | None:
        """The expression as one of our own modules (`audit`, `practice.models`), or None."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            module = self._our_module(node.value)
            if module and is_our_module(f"{module}.{node.attr}"):
                return f"{module}.{node.attr}"
        return None

    def _descends_from_library(self, bases, seen=frozenset()) -> bool:
        for base in bases:
            if is_library_module(self._root_module(base)):
                return True
            name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
            if name in self.classes and name not in seen and self._descends_from_library(
                    self.classes[name], seen | {name}):
                return True
        return False

    # imports
    def visit_Import(self, node):
        for alias in node.names:
            if is_library_module(alias.name) and any(is_private(part) for part in alias.name.split(".")):
                self.report(node, f"imports the private module {alias.name}")

    def visit_ImportFrom(self, node):
        if node.level or not is_library_module(node.module):
            return
        if any(is_private(part) for part in node.module.split(".")):
            self.report(node, f"imports from the private module {node.module}")
        for alias in node.names:
            if is_private(alias.name):
                self.report(node, f"imports {node.module}.{alias.name}")

    # classes and what they override
    def visit_ClassDef(self, node):
        library_class = self._descends_from_library(node.bases)
        if library_class:
            for item in node.body:
                for name in defined_names(item):
                    if name in self.library.names:
                        self.report(item, f"class {node.name} overrides the library's private {name}")
        self.class_stack.append(library_class)
        self.generic_visit(node)
        self.class_stack.pop()

    # attributes, keywords, getattr
    def visit_Attribute(self, node):
        name = node.attr
        if is_private(name) and self._our_module(node.value) is None:
            own_instance = (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                            and self.class_stack and not self.class_stack[-1])
            if is_library_module(self._root_module(node.value)) and not own_instance:
                self.report(node, f"uses {ast.unparse(node)} (a private name of {self._root_module(node.value)})")
            elif name in self.library.names and not own_instance:
                self.report(node, f"uses {ast.unparse(node)} ({name} is a private name of a library)")
        self.generic_visit(node)

    def visit_Call(self, node):
        for keyword in node.keywords:
            if keyword.arg and keyword.arg in self.library.keywords:
                self.report(node, f"passes the library's private keyword {keyword.arg}=")
        if isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_FUNCTIONS and len(node.args) > 1 \
                and _string(node.args[1]) and node.args[1].value in self.library.names:
            self.report(node, f"{node.func.id}(..., {node.args[1].value!r}) reaches a library's private name")
        self.generic_visit(node)


def scan_source(source: str, *, package: str = "practice") -> list[str]:
    """The scan of a module's source, as if it were in `package`."""
    tree = ast.parse(source)
    return Scan(tree, package=package, classes=class_bases([tree]), library=library_names()).found


@functools.cache
def app_trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_bytes(), filename=str(path)) for path in app_files()}


def scan_app_file(path: Path) -> list[str]:
    trees = app_trees()
    return Scan(trees[path], package=package_of(path), classes=class_bases(list(trees.values())),
                library=library_names()).found


# ---- the tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", app_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_app_uses_only_public_names_of_its_libraries(path):
    found = scan_app_file(path)
    assert not found, f"{path.relative_to(ROOT)} uses private names of its libraries:\n" + "\n".join(
        f"  {path.relative_to(ROOT)}:{line}" for line in found)


def test_the_scan_covers_the_app_and_reads_the_libraries():
    scanned = {str(path.relative_to(ROOT)) for path in app_files()}
    assert {"portal.py", "practice/models.py", "practice/mail.py", "blueprints/signin.py",
            "blueprints/clinic/_access.py"} <= scanned
    assert not any(name.split("/")[0] in NOT_THE_APP for name in scanned)
    library = library_names()
    assert library.files > 100
    assert {"_returning", "_insert", "_get_cursor_wrapper", "_dirty", "_meta", "_is_closed", "_fold", "_message",
            "_get_current_object", "_check_request_limit", "_user_context_processor"} <= library.names
    assert "__no_default__" in library.keywords


@pytest.mark.parametrize("source, expected", [
    ("def f(query):\n    return query._returning\n", "query._returning"),
    ("from peewee import ModelSelect\nModelSelect(None)._get_cursor_wrapper(None)\n", "_get_cursor_wrapper"),
    ("def f(practice):\n    practice._dirty.clear()\n", "practice._dirty"),
    ("def f(model):\n    return model._meta.sorted_fields\n", "model._meta"),
    ("def f(cls):\n    return cls(__no_default__=1)\n", "__no_default__"),
    ("from flask_login import current_user\ncurrent_user._get_current_object()\n", "current_user._get_current_object"),
    ("from flask_login.utils import _user_context_processor\n", "flask_login.utils._user_context_processor"),
    ("import email._policybase\n", "email._policybase"),
    ("from email._policybase import Compat32\n", "email._policybase"),
    ("import flask\nflask.g._anything_at_all\n", "flask.g._anything_at_all"),
    # An object imported from one of our modules is not our module: db is peewee's.
    ("from practice.models import db\ndb._state\n", "db._state"),
    ("def f(row):\n    return getattr(row, '_dirty')\n", "'_dirty'"),
    ("from email.policy import Compat32\nclass P(Compat32):\n    def _fold(self, name, value, sanitize):\n"
     "        return super()._fold(name, value, sanitize)\n", "overrides the library's private _fold"),
    ("from flask_limiter import Limiter\nclass L(Limiter):\n    def _check_request_limit(self, *args):\n"
     "        pass\n", "overrides the library's private _check_request_limit"),
    # Through a class of ours that descends from a library class.
    ("from playhouse.pool import PooledPostgresqlDatabase\nclass A(PooledPostgresqlDatabase):\n    pass\n"
     "class B(A):\n    def _is_closed(self, conn):\n        return self._is_closed(conn)\n", "B overrides"),
    ("from flask_mail import Message\nclass M(Message):\n    def as_bytes(self):\n        return self._message()\n",
     "self._message"),
])
def test_the_scan_reports_a_private_name(source, expected):
    found = scan_source(source)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("source", [
    "from ._htmx import redirect_to\n",
    "from . import audit\naudit._id(1)\n",
    "from practice import models\nmodels._request_memo\n",
    "class Ours:\n    def __init__(self):\n        self._rows = []\n        self._close = None\n"
    "    def take(self):\n        return self._rows.pop(), self._close\n",
    "from flask import url_for\nurl_for('clinic.client_view', client_id=1, _anchor='documents')\n",
    "class Ours:\n    pass\nOurs.__name__, Ours.__init__\n",
])
def test_the_scan_lets_our_own_and_public_names_pass(source):
    assert scan_source(source) == []
