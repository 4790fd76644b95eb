"""Training guards: a NaN or inf stops a run with one line and keeps the last good checkpoint.

Divergence is injected on purpose: a learner update that writes a NaN into a network parameter (or returns a
NaN loss, or a NaN Adam moment), an economy whose state turns infinite after some periods, an SRL objective
that turns NaN. Each run must stop with :class:`~abm_markets.errors.TrainingDiverged` naming the iteration
(epoch), the group and what went non-finite; ``checkpoints/latest`` must still name the last good checkpoint,
which loads and holds finite tensors only, and a resume from it continues normally.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch

from abm_markets.cli import main
from abm_markets.engine.constructor import build_economy, load_declaration
from abm_markets.errors import TrainingDiverged, UserError
from abm_markets.learn.glue import GroupLearner
from abm_markets.learn.train import TrainConfig, Trainer, train
from abm_markets.runs import RunContext, nonfinite_tensors
from abm_markets.srl import solver as srl_solver
from abm_markets.srl.huggett import HuggettConfig, HuggettModel
from abm_markets.srl.solver import SRLConfig, solve

ROOT = Path(__file__).resolve().parent.parent
BM = ROOT / "scenarios" / "brock-mirman.toml"
CFG = TrainConfig(groups=("households",), n_economies=16, rollout_len=8, iterations=6, minibatch=64, checkpoint_every=2)


@pytest.fixture(scope="module")
def economy() -> Any:
    return build_economy(load_declaration(BM))


def _ctx(out: Path, resume: bool = False) -> RunContext:
    return RunContext(out=out, seed=0, device=torch.device("cpu"), resume=resume, progress_enabled=False)


def _latest(out: Path) -> str:
    return (out / "checkpoints" / "latest").read_text().strip()


def _assert_good_checkpoint(out: Path, name: str) -> dict[str, Any]:
    assert _latest(out) == name
    ckpt = torch.load(out / "checkpoints" / f"{name}.pt", weights_only=True)
    assert nonfinite_tensors({k: v for k, v in ckpt.items() if k != "metrics"}) == []
    return ckpt


def _poison_update(monkeypatch: pytest.MonkeyPatch, at_call: int, how: str) -> None:
    """Make the ``at_call``-th PPO update diverge: a NaN parameter, a NaN loss or a NaN Adam moment."""
    original = GroupLearner.update_on_policy
    calls = {"n": 0}

    def update(self: GroupLearner, *args: Any, **kw: Any) -> dict[str, float]:
        stats = original(self, *args, **kw)
        calls["n"] += 1
        if calls["n"] == at_call:
            if how == "parameter":
                with torch.no_grad():
                    next(self.algorithms.parameters()).view(-1)[0] = math.nan
            elif how == "loss":
                stats = {**stats, "loss": math.nan}
            else:  # an optimiser moment: the parameters stay finite, only the checkpoint guard sees it
                opt = self.algorithms[0]._optimizers[0]._optim
                moments = next(iter(opt.state.values()))
                moments["exp_avg"].view(-1)[0] = math.nan
        return stats

    monkeypatch.setattr(GroupLearner, "update_on_policy", update)


# ----------------------------------------------------------------------------------------------- training
def test_nan_parameter_stops_training_and_keeps_last_good_checkpoint(tmp_path, economy, monkeypatch) -> None:
    _poison_update(monkeypatch, at_call=3, how="parameter")
    with pytest.raises(TrainingDiverged) as err:
        train(Trainer(economy, CFG, seed=0), _ctx(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg
    assert "iteration 3" in msg and "group 'households'" in msg and "NaN in parameter" in msg
    assert str(tmp_path / "checkpoints" / "iter000002.pt") in msg
    assert err.value.iteration == 3 and err.value.group == "households" and isinstance(err.value, UserError)
    # nothing of the diverged iteration was checkpointed; the last good one loads with finite tensors only
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["iter000002.pt"]
    ckpt = _assert_good_checkpoint(tmp_path, "iter000002")
    assert ckpt["iteration"] == 2
    assert pl.read_parquet(tmp_path / "metrics.parquet")["iteration"].to_list() == [1, 2]
    # and it resumes: without the fault the run finishes as one that never diverged
    monkeypatch.undo()
    resumed = Trainer(economy, CFG, seed=0)
    rows = train(resumed, _ctx(tmp_path, resume=True))
    straight = Trainer(economy, CFG, seed=0)
    train(straight)
    assert [r["iteration"] for r in rows] == [3, 4, 5, 6]
    pairs = zip(
        straight.learners["households"].algorithms.parameters(),
        resumed.learners["households"].algorithms.parameters(),
        strict=True,
    )
    assert all(torch.equal(a, b) for a, b in pairs)


def test_nan_loss_before_the_first_checkpoint(tmp_path, economy, monkeypatch) -> None:
    _poison_update(monkeypatch, at_call=1, how="loss")
    with pytest.raises(TrainingDiverged, match=r"iteration 1, group 'households': NaN in loss loss; no checkpoint"):
        train(Trainer(economy, CFG, seed=0), _ctx(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_checkpoint_with_a_nan_optimiser_moment_is_not_written(tmp_path, economy, monkeypatch) -> None:
    """Parameters still finite (the per-iteration check passes); the checkpoint's own check refuses to write."""
    _poison_update(monkeypatch, at_call=4, how="moment")
    with pytest.raises(TrainingDiverged, match=r"iteration 4: non-finite checkpoint state learners\.households\."):
        train(Trainer(economy, CFG, seed=0), _ctx(tmp_path))
    _assert_good_checkpoint(tmp_path, "iter000002")
    assert not (tmp_path / "checkpoints" / "iter000004.pt").exists()


def test_infinite_economy_state_stops_training(tmp_path, economy, monkeypatch) -> None:
    """An economy whose capital turns infinite in period 35 (iteration 5 of 8 periods each)."""
    original = economy.step
    calls = {"n": 0}

    def step(state: Any, actions: Any, generator: torch.Generator) -> Any:
        nxt, out = original(state, actions, generator)
        calls["n"] += 1
        if calls["n"] >= 35:
            nxt = dataclasses.replace(nxt, K=torch.full_like(nxt.K, math.inf))
        return nxt, out

    monkeypatch.setattr(economy, "step", step)
    with pytest.raises(TrainingDiverged) as err:
        train(Trainer(economy, CFG, seed=0), _ctx(tmp_path))
    msg = str(err.value)
    assert msg.startswith("training diverged at iteration 5: inf in economy state field 'K'")
    assert str(tmp_path / "checkpoints" / "iter000004.pt") in msg
    assert _assert_good_checkpoint(tmp_path, "iter000004")["iteration"] == 4


def test_diverged_run_is_one_line_on_the_command_line(tmp_path, monkeypatch, capsys) -> None:
    _poison_update(monkeypatch, at_call=2, how="parameter")
    out = tmp_path / "run"
    sets = ["iterations=4", "checkpoint_every=1", "n_economies=16", "rollout_len=8", "minibatch=64"]
    rc = main(["run", str(BM), "--out", str(out), "--no-progress", *(a for s in sets for a in ("--set", s))])
    err = capsys.readouterr().err.strip()
    assert rc == TrainingDiverged.exit_status == 3  # 2 is kept for bad input, where nothing is written
    assert err.count("\n") == 0 and err.startswith("abm-markets: error: training diverged at iteration 2")
    assert _latest(out) == "iter000001" and not (out / "summary.json").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "diverged"


# ----------------------------------------------------------------------------------------------------- SRL
SRL = SRLConfig(
    n_paths=4, horizon=20, tail=5, max_epochs=12, warmup_epochs=2, min_epochs=100, checkpoint_every=3, lr_decay=0.98
)


@pytest.fixture(scope="module")
def huggett() -> HuggettModel:
    return HuggettModel(HuggettConfig(equilibrium="partial", n_assets=30, asset_max=10.0, n_income=2, n_r=3, n_tfp=1))


def test_nan_objective_stops_srl_and_keeps_last_good_checkpoint(tmp_path, huggett, monkeypatch) -> None:
    original = srl_solver.rollout
    calls = {"n": 0}

    def rollout(*args: Any, **kw: Any) -> srl_solver.Rollout:
        roll = original(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 8:
            roll.objective["household"] = roll.objective["household"] * math.nan
        return roll

    monkeypatch.setattr(srl_solver, "rollout", rollout)
    with pytest.raises(TrainingDiverged) as err:
        solve(huggett, SRL, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path))
    msg = str(err.value)
    assert msg.startswith("training diverged at epoch 8, group 'household': NaN in the objective (loss)")
    assert str(tmp_path / "checkpoints" / "epoch000006.pt") in msg
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["epoch000003.pt", "epoch000006.pt"]
    assert _latest(tmp_path) == "epoch000006"
    ckpt = torch.load(tmp_path / "checkpoints" / "epoch000006.pt", weights_only=True)
    assert ckpt["srl"]["epoch"] == 6 and nonfinite_tensors(ckpt["srl"]) == []
    # resumed without the fault it ends where an uninterrupted solve ends, bit for bit
    monkeypatch.undo()
    resumed = solve(huggett, SRL, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path, resume=True))
    straight = solve(huggett, SRL, generator=torch.Generator().manual_seed(0))
    assert resumed.epochs == straight.epochs == 12
    assert all(torch.equal(resumed.params[k], straight.params[k]) for k in straight.params)
    assert [r["objective_household"] for r in resumed.history] == [r["objective_household"] for r in straight.history]


def test_nan_table_after_the_step_names_the_table(tmp_path, huggett, monkeypatch) -> None:
    original = torch.optim.Adam.step
    calls = {"n": 0}

    def step(self: torch.optim.Adam, *args: Any, **kw: Any) -> Any:
        out = original(self, *args, **kw)
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = math.inf
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, group 'household': inf in table .*; no checkpoint"):
        solve(huggett, SRL, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_srl_resume_of_a_finished_solve_returns_it_and_more_epochs_continue_it(tmp_path, huggett) -> None:
    first = solve(huggett, SRL, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path))
    assert _latest(tmp_path) == "epoch000012"
    again = solve(huggett, SRL, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path, resume=True))
    assert again.epochs == 12 and len(again.history) == 12
    assert all(torch.equal(first.params[k], again.params[k]) for k in first.params)
    longer = dataclasses.replace(SRL, max_epochs=15)
    more = solve(huggett, longer, generator=torch.Generator().manual_seed(0), ctx=_ctx(tmp_path, resume=True))
    straight = solve(huggett, longer, generator=torch.Generator().manual_seed(0))
    assert more.epochs == 15 and [r["epoch"] for r in more.history] == list(range(1, 16))
    assert all(torch.equal(more.params[k], straight.params[k]) for k in straight.params)
