"""Economic blocks: small named functions whose argument and output names are economic variables.

A block is the unit the economy constructor (:mod:`abm_markets.engine.constructor`) assembles economies from, in
the style of sequence-jacobian's ``@simple`` blocks: the names of a function's arguments say which variables or
parameters it needs, the declared outputs say which variables it computes, and the constructor wires blocks
together by name::

    @block(outputs=("Y",))
    def cobb_douglas(K, Z, alpha):
        return Z * K**alpha

Three ways to make one:

* :func:`block`, a decorator on a Python function (``kind`` ``simple``, ``aggregate`` or ``market``);
* :func:`use`, a block of the library :data:`BLOCK_LIBRARY` by name, with ``rename`` (block name -> economy
  variable), ``params`` (block-local parameter values) and, for market blocks, the ``good`` it clears;
* :func:`expression`, blocks parsed from text (``Y = "Z * K**alpha"``) with Python's :mod:`ast` into a small
  torch interpreter. Allowed: numbers, names, ``+ - * / **``, unary minus, and the functions ``log exp sqrt``
  (one argument), ``min max`` (two or more, element-wise), ``sum mean`` (over a group's agents), ``clip(x, lo,
  hi)``. Anything else is rejected with a one-line :class:`~abm_markets.errors.ConfigError`; text is never
  passed to ``eval``.

Shapes: a variable over the economy is ``[B, 1]`` inside a block, a variable over a group of ``n`` agents
``[B, n]``; parameters are Python floats (0-dim tensors inside expressions), so ordinary broadcasting combines
economy-wide and per-agent variables. ``simple`` blocks and expressions are element-wise: their outputs live
over the group of their inputs (or the economy), and the constructor rejects a block that mixes two groups.
``aggregate`` blocks (and ``sum``/``mean`` in expressions) reduce a group variable to an economy one; a
``market`` block takes its buyers' spending over the buyer group and returns per-buyer and economy-wide results.
"""

from __future__ import annotations

import ast
import inspect
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from abm_markets.engine.preferences import crra_utility as _crra
from abm_markets.engine.technology import accumulate as _accumulate
from abm_markets.errors import ConfigError, unknown
from abm_markets.markets import Offers, Orders, WalrasianMarket

__all__ = [
    "BLOCK_LIBRARY",
    "ECONOMY",
    "EXPRESSION_FUNCTIONS",
    "EconomicBlock",
    "block",
    "expression",
    "library_block",
    "register_block",
    "use",
]

ECONOMY = "economy"
"""The index set of an economy-wide variable (``[B]`` outside blocks, ``[B, 1]`` inside)."""

KINDS = ("simple", "aggregate", "market", "expression")

EXPRESSION_FUNCTIONS = ("log", "exp", "sqrt", "min", "max", "sum", "mean", "clip")
"""Functions an expression block may call."""

_ALLOWED = "numbers, names, + - * / **, unary minus and the functions " + " ".join(EXPRESSION_FUNCTIONS)
_ARITY = {"log": (1, 1), "exp": (1, 1), "sqrt": (1, 1), "sum": (1, 1), "mean": (1, 1), "clip": (3, 3)}
_ARITY.update({"min": (2, 99), "max": (2, 99)})
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_WHAT = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.Starred: "star arguments",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.Await: "await",
    ast.Yield: "yield",
}


# ------------------------------------------------------------------------------------------------ blocks
@dataclass(frozen=True, kw_only=True)
class EconomicBlock:
    """One named block of an economy: a function from named variables/parameters to named variables.

    Attributes:
        name: The block's name in error messages and docs (``technology``, ``budget``).
        fn: The function; called with keyword arguments ``args`` (tensors ``[B, 1]`` or ``[B, n]``, parameters
            as floats) and returning one tensor (one output), a tuple in ``outs`` order, or a dict by ``outs``.
        args: The function's argument names (block-internal names).
        outs: The function's output names (block-internal names).
        defaults: Values of arguments that have a default in the function: used when neither ``params`` nor the
            economy supplies them.
        rename: Block-internal name -> economy variable (``{"x": "K"}``), for arguments and outputs.
        params: Block-local parameter values (block-internal argument name -> number); they override economy
            parameters of the same name for this block only.
        kind: ``simple`` (element-wise), ``aggregate`` (group variables in, economy variables out), ``market``
            (buyers' spending in, clears ``good``), ``expression`` (parsed from text).
        economy_outputs: Outputs of a ``market`` block that are economy-wide (its price).
        market: Mechanism of a ``market`` block (``walrasian``); the good it clears must trade in that market.
        good: The good a ``market`` block clears (set per use).
        tree: The parsed expression of an ``expression`` block.
        text: The expression's text (``expression`` blocks).
        library: Library name when the block comes from :data:`BLOCK_LIBRARY`.
        doc: One line: the block's equations.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...]
    outs: tuple[str, ...]
    defaults: Mapping[str, float] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, float] = field(default_factory=dict)
    kind: str = "simple"
    economy_outputs: tuple[str, ...] = ()
    market: str = ""
    good: str = ""
    tree: ast.expr | None = None
    text: str = ""
    library: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        where = f"block {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"block name {self.name!r} is invalid; expected a non-empty string")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind = {self.kind!r} is invalid; expected one of {', '.join(KINDS)}")
        if not self.outs:
            raise ConfigError(f"{where} has no outputs; expected at least one output name")
        for key, value in dict(self.rename).items():
            if key not in self.args and key not in self.outs:
                raise ConfigError(f"{where}: {unknown('name to rename', key, (*self.args, *self.outs))}")
            if not isinstance(value, str) or not value.isidentifier():
                raise ConfigError(f"{where}: rename {key} = {value!r} is invalid; expected a variable name")
        for key, value in dict(self.params).items():
            if key not in self.args:
                raise ConfigError(f"{where}: {unknown('parameter', key, self.args)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"{where}: parameter {key} = {value!r} is invalid; expected a finite number")
        if self.kind == "market" and not self.market:
            raise ConfigError(f"{where}: a market block needs its mechanism (market = 'walrasian')")
        if self.good and self.kind != "market":
            raise ConfigError(f"{where}: good = {self.good!r} is only valid on a market block")

    # -------------------------------------------------------------------------------------- names
    def external(self, name: str) -> str:
        """The economy variable a block-internal name stands for."""
        return self.rename.get(name, name)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Economy names the block needs (arguments without a block-local value or a default)."""
        return tuple(self.external(a) for a in self.args if a not in self.params and a not in self.defaults)

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        """Economy names the block reads when the economy supplies them (else the function's default)."""
        return tuple(self.external(a) for a in self.args if a not in self.params and a in self.defaults)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Economy names of the block's outputs."""
        return tuple(self.external(o) for o in self.outs)

    @property
    def label(self) -> str:
        """``name`` (and the library block it uses) for messages."""
        return f"{self.name!r} ({self.library})" if self.library and self.library != self.name else repr(self.name)

    # -------------------------------------------------------------------------------------- variants
    def renamed(self, **mapping: str) -> EconomicBlock:
        """The block with some names changed: ``cobb_douglas.renamed(K="capital")``."""
        return replace(self, rename={**self.rename, **mapping})

    def with_params(self, **params: float) -> EconomicBlock:
        """The block with block-local parameter values: ``accumulate.with_params(delta=1.0)``."""
        return replace(self, params={**self.params, **params})

    def named(self, name: str) -> EconomicBlock:
        return replace(self, name=name)

    def trading(self, good: str) -> EconomicBlock:
        """A market block clearing ``good``."""
        return replace(self, good=good)

    def __call__(self, **kwargs: Any) -> Any:
        """Call the underlying function directly (block-internal argument names)."""
        return self.fn(**kwargs)

    # -------------------------------------------------------------------------------------- evaluate
    def evaluate(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """Outputs by economy name, from ``env`` (economy name -> value)."""
        kwargs: dict[str, Any] = {}
        for a in self.args:
            ext = self.external(a)
            if a in self.params:
                kwargs[a] = float(self.params[a])
            elif ext in env:
                kwargs[a] = env[ext]
            else:
                kwargs[a] = self.defaults[a]
        result = self.fn(**kwargs)
        if isinstance(result, Mapping):
            values = [result[o] for o in self.outs]
        elif len(self.outs) == 1:
            values = [result]
        else:
            values = list(result)
            if len(values) != len(self.outs):
                raise ValueError(f"block {self.name!r} returned {len(values)} values; expected {len(self.outs)}")
        return {self.external(o): v for o, v in zip(self.outs, values, strict=True)}

    # -------------------------------------------------------------------------------------- shapes
    def infer(self, over: Mapping[str, str]) -> dict[str, str]:
        """Index set (``economy`` or a group) of each output, from those of the inputs ``over`` (economy name ->
        index set; parameters are ``economy``).

        Raises:
            ConfigError: the block combines variables of two different groups, or aggregates/trades a variable
                that is not over a group.
        """
        where = f"block {self.label}"
        if self.tree is not None:
            names = {a: ECONOMY if a in self.params else over.get(self.external(a), ECONOMY) for a in self.args}
            out = _expr_over(self.tree, names, where, self.text)
            return {self.external(o): out for o in self.outs}
        local = set(self.params)
        parts = [
            (over[self.external(a)], self.external(a)) for a in self.args if a not in local and self.external(a) in over
        ]
        common = _combine(parts, where)
        if self.kind in ("aggregate", "market"):
            if common == ECONOMY:
                names = ", ".join(repr(self.external(a)) for a in self.args if a not in self.params) or "nothing"
                raise ConfigError(
                    f"{where} needs a variable over a group of agents; its inputs {names} are economy-wide"
                )
            if self.kind == "aggregate":
                return {self.external(o): ECONOMY for o in self.outs}
            return {self.external(o): ECONOMY if o in self.economy_outputs else common for o in self.outs}
        return {self.external(o): common for o in self.outs}

    @property
    def buyer_over_input(self) -> str:
        """Economy name of a market block's spending input (its first argument)."""
        return self.external(self.args[0])


def _combine(parts: Sequence[tuple[str, str]], where: str) -> str:
    """The common index set of ``(index set, variable)`` parts: economy-wide ones broadcast over one group."""
    first: tuple[str, str] | None = None
    for over, name in parts:
        if over == ECONOMY:
            continue
        if first is None:
            first = (over, name)
        elif over != first[0]:
            raise ConfigError(
                f"{where} combines {first[1]!r} (over {first[0]}) with {name!r} (over {over}); "
                "expected variables of one group or of the economy"
            )
    return first[0] if first else ECONOMY


def block(
    outputs: str | Sequence[str],
    *,
    name: str | None = None,
    kind: str = "simple",
    economy_outputs: Sequence[str] = (),
    market: str = "",
    doc: str | None = None,
) -> Callable[[Callable[..., Any]], EconomicBlock]:
    """Decorator: a Python function becomes an :class:`EconomicBlock`.

    Args:
        outputs: Names of the function's outputs (one name, or a tuple for a function returning a tuple).
        name: Block name (default: the function's name).
        kind: ``simple`` (element-wise, the default), ``aggregate`` or ``market``.
        economy_outputs: Outputs of a ``market`` block that are economy-wide.
        market: Mechanism of a ``market`` block.
        doc: One line of equations (default: the first line of the docstring).

    Example:
        >>> @block(outputs=("Y",))
        ... def cobb_douglas(K, Z, alpha):
        ...     return Z * K**alpha
        >>> cobb_douglas.inputs, cobb_douglas.outputs
        (('K', 'Z', 'alpha'), ('Y',))
    """
    outs = (outputs,) if isinstance(outputs, str) else tuple(outputs)

    def deco(fn: Callable[..., Any]) -> EconomicBlock:
        args: list[str] = []
        defaults: dict[str, float] = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ConfigError(f"block {fn.__name__!r}: *{p.name} is invalid; expected named arguments only")
            args.append(p.name)
            if p.default is not p.empty:
                defaults[p.name] = p.default
        text = doc if doc is not None else (inspect.getdoc(fn) or "").split("\n")[0]
        return EconomicBlock(
            name=name or fn.__name__,
            fn=fn,
            args=tuple(args),
            outs=outs,
            defaults=defaults,
            kind=kind,
            economy_outputs=tuple(economy_outputs),
            market=market,
            doc=text,
        )

    return deco


# ---------------------------------------------------------------------------------------------- library
BLOCK_LIBRARY: dict[str, EconomicBlock] = {}
"""Named blocks ``use = "name"`` refers to."""


def register_block(b: EconomicBlock) -> EconomicBlock:
    """Add a block to :data:`BLOCK_LIBRARY` under its name."""
    BLOCK_LIBRARY[b.name] = replace(b, library=b.name)
    return BLOCK_LIBRARY[b.name]


def library_block(name: str) -> EconomicBlock:
    """The library block ``name``; an unknown name suggests close ones (one-line :class:`ConfigError`)."""
    if name not in BLOCK_LIBRARY:
        raise ConfigError(str(unknown("library block", name, BLOCK_LIBRARY)))
    return BLOCK_LIBRARY[name]


def use(
    library: str,
    *,
    name: str | None = None,
    rename: Mapping[str, str] | None = None,
    params: Mapping[str, float] | None = None,
    good: str = "",
) -> EconomicBlock:
    """A library block configured for one economy (the Python twin of ``use = "..."`` in TOML).

    Args:
        library: Name in :data:`BLOCK_LIBRARY`.
        name: This use's name (default: the library name).
        rename: Block name -> economy variable, e.g. ``{"X": "I"}``.
        params: Block-local parameter values, e.g. ``{"delta": 1.0}``.
        good: The good a market block clears.
    """
    b = library_block(library)
    return replace(
        b,
        name=name or b.name,
        rename={**b.rename, **(rename or {})},
        params={**b.params, **(params or {})},
        good=good,
    )


@block(outputs=("Y",), doc="Y = Z K^alpha")
def cobb_douglas(K, Z, alpha):
    """Output ``Y = Z K^alpha`` (technology)."""
    return Z * K**alpha


@block(outputs=("u",), doc="u = log C")
def log_utility(C):
    """Period utility ``u = log C``."""
    return _crra(C, 1.0)


@block(outputs=("u",), doc="u = (C^(1 - sigma) - 1) / (1 - sigma)")
def crra_utility(C, sigma):
    """Period utility, CRRA with relative risk aversion ``sigma`` (log at ``sigma = 1``)."""
    return _crra(C, float(sigma))


@block(outputs=("C", "X"), doc="C = (1 - s) Y, X = s Y")
def spend_share(Y, s):
    """Budget: a share ``s`` of output ``Y`` is spent (``X``), the rest consumed (``C``)."""
    return (1.0 - s) * Y, s * Y


@block(outputs=("K_next",), doc="K_next = (1 - delta) K + X")
def accumulate(K, X, delta):
    """Capital accumulation ``K' = (1 - delta) K + X``."""
    return _accumulate(K, X, float(delta))


@block(outputs=("total",), kind="aggregate", doc="total = sum_i x_i")
def aggregate_sum(x):
    """Sum of a group variable over the group's agents (economy-wide)."""
    return x.sum(-1, keepdim=True)


@block(outputs=("mean",), kind="aggregate", doc="mean = (1/n) sum_i x_i")
def aggregate_mean(x):
    """Mean of a group variable over the group's agents (economy-wide)."""
    return x.mean(-1, keepdim=True)


@block(
    outputs=("paid", "bought", "price"),
    kind="market",
    economy_outputs=("price",),
    market="walrasian",
    doc="p = sqrt(phi sum_i spending_i / firms), bought_i = spending_i / p, paid_i = spending_i",
)
def walrasian_competitive(spending, phi, firms=1.0):
    """One good sold by ``firms`` competitive firms with cost ``phi/2 Q^2`` each, cleared by the Walrasian market.

    Buyers place spending orders ``spending [B, H]`` (``>= 0``); firms supply ``Q = p / phi``; the price ``[B, 1]``
    clears ``sum_i spending_i / p = firms * p / phi``. Returns ``paid [B, H]``, ``bought [B, H]`` and ``price``.
    """
    budget = spending.clamp_min(0.0).unsqueeze(-1)
    orders = Orders(budget=budget, quantity=torch.full_like(budget, float("inf")))
    trade = WalrasianMarket().clear(orders, Offers(phi=float(phi), n_sellers=int(firms)))
    return trade.paid[..., 0], trade.bought[..., 0], trade.good_price()[..., :1]


for _b in (
    cobb_douglas,
    log_utility,
    crra_utility,
    spend_share,
    accumulate,
    aggregate_sum,
    aggregate_mean,
    walrasian_competitive,
):
    register_block(_b)


# -------------------------------------------------------------------------------------------- expressions
def expression(name: str, *, params: Mapping[str, float] | None = None, **outputs: str) -> tuple[EconomicBlock, ...]:
    """Blocks from expressions, one per output: ``expression("budget", C="(1 - s) * Y", X="s * Y")``.

    Each output becomes its own block (``budget[C]``, ``budget[X]`` when there are several), so an output may use
    another output of the same declaration; the constructor orders them by name.

    Args:
        name: Name of the declaration.
        params: Block-local parameter values for names the expressions use.
        **outputs: Output variable -> expression text.

    Raises:
        ConfigError: a syntax error or a construct outside arithmetic and :data:`EXPRESSION_FUNCTIONS`.
    """
    return _expression_blocks(name, outputs, params or {})


def _expression_blocks(name: str, outputs: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[EconomicBlock, ...]:
    if not outputs:
        raise ConfigError(f"expression block {name!r} has no outputs; expected outputs = {{ Y = 'Z * K**alpha' }}")
    blocks = []
    for out, text in outputs.items():
        label = name if len(outputs) == 1 else f"{name}[{out}]"
        if not isinstance(out, str) or not out.isidentifier():
            raise ConfigError(f"expression block {name!r}: output {out!r} is invalid; expected a variable name")
        tree = parse_expression(text, f"block {label!r} output {out!r}")
        names = _names(tree)
        blocks.append(
            EconomicBlock(
                name=label,
                fn=_Interpreter(tree),
                args=tuple(names),
                outs=(out,),
                params={k: v for k, v in params.items() if k in names},
                kind="expression",
                tree=tree,
                text=text,
                doc=f"{out} = {text}",
            )
        )
    unused = sorted(set(params) - {a for b in blocks for a in b.args})
    if unused:
        raise ConfigError(
            f"expression block {name!r}: {unknown('parameter', unused[0], [a for b in blocks for a in b.args])}"
        )
    return tuple(blocks)


def parse_expression(text: Any, where: str) -> ast.expr:
    """Parse and check one expression; ``where`` prefixes the one-line error."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: {text!r} is invalid; expected an expression such as 'Z * K**alpha'")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ConfigError(f"{where}: {text!r} is not a valid expression ({e.msg}); expected {_ALLOWED}") from None
    _check_node(tree, text, where)
    return tree


def _reject(node: ast.AST, what: str, text: str, where: str) -> ConfigError:
    snippet = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    return ConfigError(f"{where}: {text!r} uses {what} ({snippet!r}), which is not allowed; expected {_ALLOWED}")


def _check_node(node: ast.AST, text: str, where: str) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _reject(node, f"the constant {node.value!r}", text, where)
    elif isinstance(node, ast.Name):
        if node.id in _ARITY:
            raise _reject(node, f"the function {node.id!r} without calling it", text, where)
        if node.id.startswith("__"):
            raise _reject(node, f"the name {node.id!r}", text, where)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise _reject(node, f"the operator {type(node.op).__name__}", text, where)
        _check_node(node.left, text, where)
        _check_node(node.right, text, where)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise _reject(node, f"the operator {type(node.op).__name__}", text, where)
        _check_node(node.operand, text, where)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _reject(node, "a call of something other than a named function", text, where)
        fname = node.func.id
        if fname not in _ARITY:
            raise _reject(node, f"the function {fname!r}", text, where)
        if node.keywords:
            raise _reject(node, "keyword arguments", text, where)
        lo, hi = _ARITY[fname]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or more"
            raise _reject(node, f"{fname} with {len(node.args)} arguments (expected {want})", text, where)
        for a in node.args:
            _check_node(a, text, where)
    else:
        raise _reject(node, _WHAT.get(type(node), f"a {type(node).__name__} construct"), text, where)


def _names(tree: ast.expr) -> list[str]:
    """Variable names an expression reads, in order of appearance (function names excluded)."""
    out: list[str] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.Name) and node.id not in out:
            out.append(node.id)
        elif isinstance(node, ast.Call):
            for a in node.args:
                walk(a)
        else:
            for child in ast.iter_child_nodes(node):
                walk(child)

    walk(tree)
    return out


def _expr_over(node: ast.expr, over: Mapping[str, str], where: str, text: str) -> str:
    """Index set of a checked expression; ``sum``/``mean`` reduce a group variable to the economy."""

    def walk(n: ast.expr) -> tuple[str, str]:
        if isinstance(n, ast.Constant):
            return ECONOMY, ""
        if isinstance(n, ast.Name):
            return over.get(n.id, ECONOMY), n.id
        if isinstance(n, ast.BinOp):
            parts = [walk(n.left), walk(n.right)]
            return _combine(parts, f"{where} ({text!r})"), _witness(parts)
        if isinstance(n, ast.UnaryOp):
            return walk(n.operand)
        parts = [walk(a) for a in n.args]  # a call of a named function (checked by _check_node)
        common = _combine(parts, f"{where} ({text!r})")
        fname = _call_name(n)
        if fname in ("sum", "mean"):
            if common == ECONOMY:
                raise ConfigError(
                    f"{where}: {text!r} takes {fname}({ast.unparse(n.args[0])}) of an economy-wide value; "
                    "expected a variable over a group of agents"
                )
            return ECONOMY, ""
        return common, _witness(parts)

    return walk(node)[0]


def _witness(parts: Sequence[tuple[str, str]]) -> str:
    for over, name in parts:
        if over != ECONOMY and name:
            return name
    return parts[0][1] if parts else ""


def _call_name(n: ast.expr) -> str:
    """Name of the function a checked expression node calls (every other node was rejected by the parser)."""
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
        return n.func.id
    raise TypeError(f"unchecked expression node {ast.dump(n)}")


class _Interpreter:
    """Evaluates a checked expression tree on tensors (never ``eval``): numbers become tensors like the inputs."""

    def __init__(self, tree: ast.expr):
        self.tree = tree

    def __call__(self, **env: Any) -> Tensor:
        like = next((v for v in env.values() if isinstance(v, Tensor)), torch.zeros((), dtype=torch.float64))
        return self._lift(self._eval(self.tree, env, like), like)

    @staticmethod
    def _lift(x: Any, like: Tensor) -> Tensor:
        return x if isinstance(x, Tensor) else torch.tensor(float(x), dtype=like.dtype, device=like.device)

    def _eval(self, n: ast.expr, env: Mapping[str, Any], like: Tensor) -> Any:
        if isinstance(n, ast.Constant):
            return float(n.value)
        if isinstance(n, ast.Name):
            return self._lift(env[n.id], like)
        if isinstance(n, ast.BinOp):
            left = self._lift(self._eval(n.left, env, like), like)
            return _BINOPS[type(n.op)](left, self._eval(n.right, env, like))
        if isinstance(n, ast.UnaryOp):
            x = self._eval(n.operand, env, like)
            return -x if isinstance(n.op, ast.USub) else x
        args = [self._lift(self._eval(a, env, like), like) for a in n.args]
        f = _call_name(n)
        if f in ("log", "exp", "sqrt"):
            return getattr(torch, f)(args[0])
        if f == "sum":
            return args[0].sum(-1, keepdim=True)
        if f == "mean":
            return args[0].mean(-1, keepdim=True)
        if f == "clip":
            return torch.minimum(torch.maximum(args[0], args[1]), args[2])
        op = torch.minimum if f == "min" else torch.maximum
        out = args[0]
        for a in args[1:]:
            out = op(out, a)
        return out
