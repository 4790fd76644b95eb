"""The ``abm-markets`` command line.

Commands::

    abm-markets list
    abm-markets show NAME                       # a scenario's settings with docs and defaults
    abm-markets run NAME|PRESET.toml [--set key=value ...] [--seed N] [--out DIR] [--device cpu|cuda|auto]
    abm-markets run --resume DIR
    abm-markets sweep NAME --seeds 0-3 [--grid key=v1,v2 ...] [--set key=value ...] --out DIR [--address RAY]
    abm-markets steady-state investment|investment-externality|two-sector [--set key=value ...] [--json]
    abm-markets viz [ECONOMY.toml | ECONOMY-ID | --run RUN_DIR] [--import MODULE] [--host ADDR] [--port N] [--check]
    abm-markets compare RUN_OR_SWEEP... [--keys K1,K2*] [--format text|csv|parquet] [--out FILE]
    abm-markets report RUN_OR_SWEEP... --out REPORT.html [--title TEXT]

Errors in user input print one line (``abm-markets: error: ...``), exit with
status 2, and write nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from abm_markets.errors import UserError, unknown


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line with exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"abm-markets: error: {message}\n")
        raise SystemExit(2)


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item!r} is invalid; expected key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"--set {item!r} is invalid; expected key=value with a non-empty key")
        out[key] = value
    return out


def _build_parser() -> _Parser:
    p = _Parser(prog="abm-markets", description="Agent-based markets with learning agents.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True
    imp = {
        "dest": "imports",
        "action": "append",
        "default": [],
        "metavar": "MODULE",
        "help": "import scenarios/economies from a module or .py file outside the package (repeatable)",
    }
    ls = sub.add_parser("list", help="list scenarios with one-line descriptions")
    ls.add_argument("--import", **imp)
    show = sub.add_parser("show", help="show a scenario's settings, defaults and docs")
    show.add_argument("name")
    show.add_argument("--import", **imp)
    run = sub.add_parser("run", help="run a scenario (or a preset .toml) into a run directory")
    run.add_argument("name", nargs="?", help="scenario name or preset file")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--out", type=Path, default=None, help="run directory (default runs/NAME-TIME-sSEED)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    run.add_argument(
        "--resume", type=Path, default=None, metavar="DIR", help="resume the run in DIR from its last checkpoint"
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--import", **imp)
    sw = sub.add_parser("sweep", help="run a scenario over seeds and a parameter grid as Ray tasks")
    sw.add_argument("name", help="scenario name or preset file")
    sw.add_argument("--seeds", default="0", help="e.g. 0-3 or 1,5,9")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a swept setting")
    sw.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="a fixed setting")
    sw.add_argument("--out", type=Path, required=True, help="sweep folder (one run directory per task + index.parquet)")
    sw.add_argument("--device", default="cpu")
    sw.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    sw.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    sw.add_argument("--import", **imp)
    vz = sub.add_parser("viz", help="open the browser view (Mesa SolaraViz) of an economy")
    vz.add_argument(
        "target", nargs="?", default=None, help="a declared economy (.toml) or an economy id; default: investment"
    )
    vz.add_argument("--import", **imp)
    vz.add_argument("--port", type=int, default=8765)
    vz.add_argument("--host", default="127.0.0.1", help="address the server binds (default: this machine only)")
    vz.add_argument("--run", type=Path, default=None, metavar="DIR", help="show a market-learning run's learned market")
    vz.add_argument("--check", action="store_true", help="build the page and exit (no server)")
    cmp = sub.add_parser("compare", help="a table across runs and seeds: mean and 95%% interval of each summary figure")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run directories or sweep folders")
    cmp.add_argument("--keys", default=None, help="comma-separated summary figures (* matches anything)")
    cmp.add_argument("--format", default="text", choices=("text", "csv", "parquet"))
    cmp.add_argument("--out", type=Path, default=None, help="write to this file (required for parquet)")
    rep = sub.add_parser("report", help="one self-contained HTML report of one or several runs")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directories or sweep folders")
    rep.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    rep.add_argument("--title", default=None)
    ss = sub.add_parser("steady-state", help="deterministic steady state of an economy")
    ss.add_argument("economy", help="investment, investment-externality or two-sector")
    ss.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ss.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _cmd_list(imports: Sequence[str] = ()) -> int:
    from abm_markets import scenarios

    for spec in imports:
        scenarios.load_module(spec)
    items = scenarios.all_scenarios()
    width = max(len(s.name) for s in items)
    for s in items:
        print(f"{s.name:<{width}}  {s.description}")
    return 0


def _cmd_show(name: str, imports: Sequence[str] = ()) -> int:
    from abm_markets import scenarios

    for spec in imports:
        scenarios.load_module(spec)
    scen = scenarios.get(name)
    print(f"{scen.name}: {scen.description}")
    print(f"expected time (default, 2 cores): {scen.expected_time()}")
    cfg = scen.config()
    for f in dataclasses.fields(cfg):
        print(f"  {f.name} = {getattr(cfg, f.name)!r}\n      {f.metadata.get('doc', '')}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from abm_markets.runner import check_seed, plan_resume, run_scenario

    sets = _parse_sets(args.sets)
    if args.seed is not None:
        check_seed(args.seed)
    if args.resume is not None:
        if args.out is not None:
            raise UserError(
                f"--out {str(args.out)!r} cannot be combined with --resume; a resumed run stays in its directory "
                f"({str(args.resume)!r})"
            )
        plan = plan_resume(args.resume, sets=sets, seed=args.seed, name=args.name, imports=tuple(args.imports))
        if plan.complete:
            print(f"run directory {args.resume} is complete with these settings; nothing to do")
            return 0
        out = run_scenario(
            plan.name,
            overrides=plan.overrides,
            seed=plan.seed,
            out=args.resume,
            device=args.device,
            resume=True,
            progress=not args.no_progress,
            imports=plan.imports,
        )
    else:
        if args.name is None:
            raise UserError("run needs a scenario name or preset file (see `abm-markets list`), or --resume DIR")
        out = run_scenario(
            args.name,
            overrides=sets,
            seed=args.seed,
            out=args.out,
            device=args.device,
            progress=not args.no_progress,
            imports=tuple(args.imports),
        )
    summary = json.loads((out / "summary.json").read_text())
    print(f"run directory: {out}")
    for key, value in summary.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            print(f"  {key}: {value}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from abm_markets.runs import resolve_device
    from abm_markets.sweep import failures, parse_grid, parse_seeds, run_sweep

    seeds = parse_seeds(args.seeds)
    grid = parse_grid(args.grid)
    resolve_device(args.device)
    index = run_sweep(
        args.name,
        seeds=seeds,
        grid=grid,
        sets=_parse_sets(args.sets),
        out=args.out,
        device=args.device,
        address=args.address,
        num_cpus=args.num_cpus,
        imports=tuple(args.imports),
    )
    print(f"{index.height} runs; index: {args.out / 'index.parquet'}")
    failed = failures(index)  # the other runs finished and are indexed; exit 1 naming each failed one
    for line in failed:
        sys.stderr.write(f"abm-markets: {line}\n")
    return 1 if failed else 0


def _cmd_viz(args: argparse.Namespace) -> int:
    import os

    from abm_markets import viz

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is invalid; expected a TCP port 1-65535")
    if not args.host or any(c.isspace() for c in args.host):
        raise UserError(f"--host {args.host!r} is invalid; expected an address such as 127.0.0.1")
    imports = tuple(str(Path(i).resolve()) if i.endswith(".py") else i for i in args.imports)
    target = None
    run_dir = None
    if args.run is not None:
        if args.target is not None:
            raise UserError(
                f"viz takes an economy or --run, not both (got {args.target!r} and --run {str(args.run)!r})"
            )
        run_dir = str(args.run.resolve())
        model, params = viz.run_model(run_dir)  # validates (run folder, checkpoint) before anything starts
        viz.make_page(model, model_params=params, run_dir=run_dir)
        print(f"learned market of {args.run}: {len(model.households)} households, policies {', '.join(model.policies)}")
    if args.target is not None:
        target = str(Path(args.target).resolve()) if args.target.endswith(".toml") else args.target
        model = viz.model_for(target, imports)  # validates before anything starts
        viz.make_page(model)
        print(f"{model.economy.env_id}: {len(model.agents)} agents, sources {', '.join(model.economy.action_keys)}")
    if args.check:
        return 0
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False"}
    viz.skip_solara_check()  # nothing leaves the machine: no telemetry, no one-time check against solara.dev
    if target is not None:
        env[viz.VIZ_TARGET] = target
        env[viz.VIZ_IMPORTS] = os.pathsep.join(imports)
    if run_dir is not None:
        env[viz.VIZ_RUN] = run_dir
    cmd = [sys.executable, "-m", "solara", "run", viz.__file__, "--host", args.host, "--port", str(args.port)]
    sys.stdout.flush()
    # the server replaces this process, so stopping `abm-markets viz` (Ctrl-C, a signal) stops the server too
    os.execve(sys.executable, [*cmd, "--no-open"], env)
    return 0  # not reached


def _check_out(out: Path, suffixes: tuple[str, ...]) -> None:
    if out.suffix.lower() not in suffixes:
        raise UserError(f"--out {str(out)!r} is invalid; expected a file name ending in {' or '.join(suffixes)}")
    if not out.parent.is_dir():
        raise UserError(f"--out {str(out)!r} is invalid; its folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; expected a file name")


def _cmd_compare(args: argparse.Namespace) -> int:
    from abm_markets.reports import compare, compare_csv, compare_text, load_runs
    from abm_markets.runs import atomic_write_parquet, atomic_write_text

    keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys is not None else None
    if keys is not None and not keys:
        raise UserError(f"--keys {args.keys!r} is invalid; expected comma-separated summary figures")
    if args.format == "parquet" and args.out is None:
        raise UserError("--format parquet needs --out FILE.parquet")
    if args.out is not None:
        _check_out(args.out, {"text": (".txt",), "csv": (".csv",), "parquet": (".parquet",)}[args.format])
    table = compare(load_runs(args.runs), keys)
    if args.format == "parquet":
        atomic_write_parquet(args.out, table)
        return 0
    text = compare_csv(table) if args.format == "csv" else compare_text(table)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.out, text)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from abm_markets.reports import load_runs, report_html
    from abm_markets.runs import atomic_write_text

    _check_out(args.out, (".html", ".htm"))
    page = report_html(load_runs(args.runs), title=args.title)
    atomic_write_text(args.out, page)
    print(f"report: {args.out}")
    return 0


def _cmd_steady_state(args: argparse.Namespace) -> int:
    economies = ["investment", "investment-externality", "two-sector"]
    if args.economy not in economies:
        raise unknown("economy", args.economy, economies)
    if args.economy == "investment-externality":
        from abm_markets.solvers import externality

        data = externality.steady_state_report(externality.default_config(**_parse_sets(args.sets)))
    elif args.economy == "two-sector":
        from abm_markets.solvers import two_sector

        data = two_sector.steady_state(two_sector.TwoSectorConfig.from_overrides(_parse_sets(args.sets))).to_json()
    else:
        from abm_markets.engine.config import InvestmentConfig
        from abm_markets.solvers.investment import steady_state

        cfg = InvestmentConfig.from_overrides(_parse_sets(args.sets))
        try:
            ss = steady_state(cfg)
        except RuntimeError as e:  # the root finder failed for these settings: bad input, not a crash
            raise UserError(f"steady-state: {e}; expected settings with a finite steady state") from None
        data = ss.to_json()
    if args.json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``abm-markets`` console script."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list(args.imports)
        if args.command == "show":
            return _cmd_show(args.name, args.imports)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "steady-state":
            return _cmd_steady_state(args)
        if args.command == "viz":
            return _cmd_viz(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "report":
            return _cmd_report(args)
    except UserError as e:
        sys.stderr.write(f"abm-markets: error: {e}\n")
        return e.exit_status  # 2: bad input, nothing written; 3: a run that diverged (TrainingDiverged)
    except KeyboardInterrupt:
        sys.stderr.write("abm-markets: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader went away (`abm-markets show NAME | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
