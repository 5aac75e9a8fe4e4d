"""The shared training loop: records, divergence, --stop-after and exact resume."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import pytest
import torch
from structgrad_app_common import CLIError, RunControl, read_jsonl
from structgrad_app_common.batches import epoch_batch, global_seed, shuffled, steps_per_epoch
from structgrad_app_common.loop import Evaluation, Plan, Step, Trainer, train


@dataclass
class Config(RunControl):
    out: str = ""
    seed: int = 0
    epochs: int = 3
    blow_up_at: int = 0  # a step whose loss is NaN (0: none)
    overflow_at: int = 0  # a step whose update leaves huge weights (Overflowing)
    lr: float = 0.1


class Regression(Trainer):
    """Least squares on 10 noisy points, batches of 4 (3 per epoch, the last of 2)."""

    def build(self) -> None:
        torch.manual_seed(self.config.seed)
        self.x = torch.randn(10, 3)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(10)
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    def plan(self) -> Plan:
        per_epoch = steps_per_epoch(10, 4)
        return Plan(total=self.config.epochs * per_epoch, eval_every=per_epoch)

    def step(self, step: int) -> Step:
        idx = epoch_batch(step, 10, 4, seed=self.config.seed)
        noise = torch.randn(len(idx), generator=self.generator)  # the run's generator
        loss = ((self.model(self.x[idx]).squeeze(-1) - self.y[idx]) ** 2).mean()
        if step == self.config.blow_up_at:
            loss = loss * math.nan
        if not self.update(loss):
            return Step({}, stop=f"not finite at step {step}")
        return Step({"loss": float(loss.detach()), "noise": float(noise.sum())}, weight=len(idx))

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        with torch.no_grad():
            mse = float(((self.model(self.x).squeeze(-1) - self.y) ** 2).mean())
        return Evaluation({"train_loss": train.get("loss"), "mse": mse}, score=-mse)

    def finish(self, step: int, seconds: float) -> dict:
        return {"step": step, "stopped": self.stopped}


def _records(out):
    return [
        {k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(out / "metrics.jsonl")
    ]


def test_epoch_batch_covers_each_epoch_once():
    for n, b in [(10, 4), (8, 4), (1, 5)]:
        per = steps_per_epoch(n, b)
        for epoch in (1, 2):
            got = torch.cat(
                [epoch_batch((epoch - 1) * per + i + 1, n, b, seed=3) for i in range(per)]
            )
            assert torch.equal(got, shuffled(n, seed=3, epoch=epoch))
    assert (
        steps_per_epoch(10, 4, drop_last=True) == 2 and steps_per_epoch(3, 4, drop_last=True) == 1
    )


def test_records_best_and_weighted_window(tmp_path):
    final = train(Regression(Config(out=str(tmp_path), progress=False)))
    recs = _records(tmp_path)
    assert final == {"step": 9, "stopped": None}
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    assert all(math.isfinite(r["train_loss"]) for r in recs)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["mse"] == min(r["mse"] for r in recs) and best["step"] == 3 * best["epoch"]


def test_stop_after_then_resume_matches_an_uninterrupted_run(tmp_path):
    train(Regression(Config(out=str(tmp_path / "ref"), progress=False)))
    part = Config(out=str(tmp_path / "cut"), progress=False, stop_after=1)
    assert train(Regression(part)) == {"stopped_at": 1}
    again = Config(out=str(tmp_path / "cut"), progress=False, resume=True)
    assert train(Regression(again)) == {"step": 9, "stopped": None}
    assert _records(tmp_path / "cut") == _records(tmp_path / "ref")


@pytest.mark.parametrize("at", [1, 5])
def test_divergence_stops_and_is_recorded(tmp_path, at):
    final = train(Regression(Config(out=str(tmp_path), progress=False, blow_up_at=at)))
    assert final == {"step": at, "stopped": f"not finite at step {at}"}
    assert _records(tmp_path)[-1]["epoch"] == -(-at // 3)  # the started epoch is scored


def test_global_seed_is_one_step_across_threads():
    # A thread seeds, waits, then draws: without the lock another thread's seed
    # would land in between.
    def draw(seed, out):
        with global_seed(seed):
            time.sleep(0.01)
            out[seed] = torch.randn(4)

    alone = {}
    for seed in range(6):
        draw(seed, alone)
    together = {}
    threads = [threading.Thread(target=draw, args=(s, together)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(alone[s], together[s]) for s in range(6))


def test_an_update_past_the_float_range_stops_the_run(tmp_path):
    # Adam's first step with lr = 1e38 leaves float32 (torch raises a RuntimeError).
    final = train(Regression(Config(out=str(tmp_path), progress=False, lr=1e38)))
    assert final["step"] == 1 and final["stopped"].startswith("update overflowed at step 1 (")


def test_other_errors_of_a_step_propagate(tmp_path):
    class Broken(Regression):
        def step(self, step: int) -> Step:
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(Broken(Config(out=str(tmp_path), progress=False)))


class Overflowing(Regression):
    """Its update at step ``overflow_at`` leaves huge weights: the next scores overflow."""

    def scores(self) -> torch.Tensor:
        from structgrad.solvers import top_k

        w = self.model.weight.detach().double()
        # what a latent layer sees once huge weights overflow its input
        return top_k((w * math.inf if w.abs().max() > 1e20 else w).numpy(), 1)

    def step(self, step: int) -> Step:
        self.scores()
        out = super().step(step)
        if step == self.config.overflow_at:  # the update that overflowed
            with torch.no_grad():
                self.model.weight.fill_(1e30)
        return out

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        self.scores()
        ev = super().evaluate(step, train)
        return ev._replace(record={**ev.record, "weight": float(self.model.weight.detach().sum())})

    def finish(self, step: int, seconds: float) -> dict:
        return {"step": step, "stopped": self.stopped, "weight": self.model.weight.detach().clone()}


@pytest.mark.parametrize("keeps_best", [True, False])
@pytest.mark.parametrize("score_on_stop", [True, False])
def test_diverged_scores_stop_the_run_on_weights_that_work(tmp_path, score_on_stop, keeps_best):
    # Finite but huge weights made the next forward NaN: the layer's
    # InvalidScoresError ended the run (exit 1, no final.json) in dvae, l2x, nri.
    # The run falls back to best.pt, else last.pt (dvae keeps no best.pt: its
    # last evaluated epoch), else the weights it started from.
    class Trainer_(Overflowing):
        def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
            ev = super().evaluate(step, train)
            return ev if keeps_best else ev._replace(score=None)

    Trainer_.score_on_stop = score_on_stop
    final = train(Trainer_(Config(out=str(tmp_path), progress=False, overflow_at=4)))
    assert final["step"] == 5 and final["stopped"].startswith("scores diverged at step 5 (")
    records = _records(tmp_path)
    assert (tmp_path / "best.pt").exists() == keeps_best
    if keeps_best:
        best = torch.load(tmp_path / "best.pt", weights_only=True)
        torch.testing.assert_close(final["weight"], best["model"]["weight"])  # not 1e30
    else:  # the weights of the last evaluation, at step 3
        assert float(final["weight"].sum()) == pytest.approx(records[0]["weight"])
    last = records[-1]
    if score_on_stop:  # the fallback weights are scored at the stop
        assert last["epoch"] == 2 and last["weight"] == pytest.approx(float(final["weight"].sum()))
    else:
        assert last == {"epoch": 2, "split": "stopped", "reason": final["stopped"]}
    # diverged before any evaluation: the weights the run started from
    early = Trainer_(Config(out=str(tmp_path / "early"), progress=False, overflow_at=1))
    start = Overflowing(Config(out=str(tmp_path / "x"), progress=False))
    start.build()
    torch.testing.assert_close(train(early)["weight"], start.model.weight)


@dataclass
class Longer(Config):
    FREE = ("epochs",)  # a resumed run may train longer (or be asked for less)


@pytest.mark.parametrize(
    ("entry", "value", "named"),
    [
        ("step", -5, "step"),
        ("step", 2.5, "step"),
        ("elapsed", -1.0, "elapsed"),
        ("elapsed", math.inf, "elapsed"),
        ("best", math.nan, "best"),
        ("best", math.inf, "best"),
        ("window_weight", -2.0, "window_weight"),
    ],
)
def test_a_crafted_checkpoint_is_refused_on_resume(tmp_path, entry, value, named):
    assert train(Regression(Longer(out=str(tmp_path), epochs=1, progress=False)))["step"] == 3
    last = tmp_path / "last.pt"
    state = torch.load(last, weights_only=True)
    torch.save({**state, entry: value}, last)
    with pytest.raises(CLIError, match=rf"is corrupt \({named} out of range\); start afresh"):
        train(Regression(Longer(out=str(tmp_path), epochs=2, resume=True, progress=False)))
    torch.save({**state, entry: "x"}, last)
    with pytest.raises(CLIError, match="older version"):
        train(Regression(Longer(out=str(tmp_path), epochs=2, resume=True, progress=False)))


def test_resuming_past_the_total_trains_no_further_and_keeps_the_config(tmp_path):
    train(Regression(Longer(out=str(tmp_path), epochs=3, progress=False)))
    saved = (tmp_path / "config.json").read_text()
    records = _records(tmp_path)
    final = train(Regression(Longer(out=str(tmp_path), epochs=1, resume=True, progress=False)))
    assert final["step"] == 9  # the run is at epoch 3 and stays there
    assert (tmp_path / "config.json").read_text() == saved  # still says epochs 3
    assert _records(tmp_path) == records
    # A larger total continues the same run, and config.json says so.
    assert (
        train(Regression(Longer(out=str(tmp_path), epochs=4, resume=True, progress=False)))["step"]
        == 12
    )
    assert '"epochs": 4' in (tmp_path / "config.json").read_text()
