"""Options every command shares, declared once, and how a config class becomes command-line options
(each field's docstring is its --help line).

    Train = cli_view(VAEConfig)          # the same class, each option's help one paragraph
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

Device = Literal["auto", "cpu", "cuda"]


@dataclass
class Compute:
    device: Device = "auto"
    """auto: CUDA if torch sees a GPU, else the CPU."""
    quiet: bool = False
    """No progress bar and no per-epoch lines (the bar is off anyway when stderr is not a terminal)."""


@dataclass
class TrainCompute(Compute):
    graphs: bool = True
    """On a CUDA GPU, replay each training step from a CUDA graph where the model allows it
    (genae.train.steps); --no-graphs runs every step eagerly. No effect on the CPU."""


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string right after its declaration), searched up the class's bases,
    as one paragraph."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def cli_view(cls: type, hidden: tuple[str, ...] = ()) -> type:
    """`cls` as command-line options: a subclass whose fields carry their docstrings as one-paragraph
    help; `hidden` fields are left out of the command line (their values come from elsewhere)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if f.name in hidden:
            typ = tyro.conf.Suppress[hints[f.name]]
        else:
            typ = Annotated[hints[f.name], tyro.conf.arg(help=docs.get(f.name))]
        if f.default_factory is not dataclasses.MISSING:
            spec = dataclasses.field(default_factory=f.default_factory)
        else:
            spec = dataclasses.field(default=f.default)
        fields.append((f.name, typ, spec))
    view = dataclasses.make_dataclass(cls.__name__, fields, bases=(cls,))
    view.__doc__ = cls.__doc__
    view.view_of = cls
    return view


def base_class(options) -> type:
    """The class a `cli_view` was made of (or the object's own class)."""
    return vars(type(options)).get("view_of", type(options))
