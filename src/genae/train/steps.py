"""How the engine runs one training step: eagerly, or replayed from a CUDA graph.

A step is, for one batch of training images given by its indices: the model's `plan_step` on the
host (the step's choices that fix its shapes, such as how many of its images are labeled), then
its `training_batch`, then each active phase in order (zero grads, loss, backward, [average
gradients across processes], optimizer step), then the phases' logged parts added, each times the
batch size, to the epoch's running sums. The images stay on the device; a step reads them by index.

Three modes (`step_mode`):
  eager   every step as written, any shapes: the CPU, data-parallel runs, models whose step is not
          `graph_safe`, and --no-graphs.
  graph   one CUDA GPU, a graph-safe model: the step is captured once as a CUDA graph per key —
          the set of active phases (a phase with `every` > 1 makes two) and the model's plan — and
          replayed for every full batch, its indices copied into a fixed index buffer first. A key
          is captured after it has run eagerly WARMUP times (lazy state: Adam's moments, cuBLAS
          workspaces); those steps run on a side stream, as PyTorch's CUDA-graph notes ask. The
          fused Adam kernel takes the learning rate as a constant, so a schedule that changes it
          recaptures at the next step. The last, smaller batch of an epoch runs eagerly: no image
          is dropped or drawn twice, and every step does exactly the work of the eager mode. A
          capture that fails (a model's step that a graph cannot hold) ends the training with an
          error that says why and names --no-graphs: after a failed capture CUDA's state cannot be
          trusted to go on.
  static  the graph mode's bookkeeping without capture (each "replay" calls the step): how the
          tests check on the CPU that the graph mode schedules and sums exactly as eager does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from genae.errors import UserError
from genae.models.base import Model, Phase
from genae.train import distributed

WARMUP = 3


class CaptureFailed(UserError):
    """The training step could not be captured as a CUDA graph."""


def step_mode(device: torch.device, model: Model, *, graphs: bool, world: int) -> str:
    """'graph' where a CUDA graph may replay the step (see the module docstring), else 'eager'."""
    if graphs and device.type == "cuda" and world == 1 and model.graph_safe:
        return "graph"
    return "eager"


class StepRunner:
    """Runs the training steps of one `fit` and keeps the epoch's running sums of logged parts."""

    def __init__(self, model: Model, phases: list[Phase], train_x: torch.Tensor, train_y: torch.Tensor, *,
                 batch_size: int, autocast: Callable[[], contextlib.AbstractContextManager], mode: str,
                 world: int = 1):
        if mode not in ("eager", "graph", "static"):
            raise ValueError(f"unknown step mode {mode!r}")
        self.model, self.phases, self.mode, self.world = model, phases, mode, world
        self.train_x, self.train_y, self.batch_size = train_x, train_y, batch_size
        self.autocast = autocast
        self.sums: dict[str, torch.Tensor] = {}   # phase → its parts' running sums (float64)
        self.keys: dict[str, list[str]] = {}      # phase → the names of those parts
        self.graphs: dict[tuple, object] = {}   # (active phases, plan) → its graph (or True: static)
        self.eager_runs: dict[tuple, int] = {}
        self.captured_rates: tuple[float, ...] | None = None
        self.captures = 0
        if mode != "eager":
            self.index = torch.zeros(batch_size, dtype=torch.long, device=train_x.device)
        if mode == "graph":
            self.side = torch.cuda.Stream(train_x.device)

    def start_epoch(self) -> None:
        for acc in self.sums.values():
            acc.zero_()

    def run(self, host_idx: torch.Tensor, idx: torch.Tensor, active: list[Phase], weight: float = 1.0) -> None:
        """One step on the images `idx` (device indices; `host_idx` the same on the host) with the
        phases `active`; `weight`: this process's share of the global batch (data-parallel gradient
        averaging)."""
        plan = self.model.plan_step(host_idx)
        if self.mode == "eager" or len(idx) != self.batch_size:
            self._body(idx, active, plan, weight)
            return
        key = (tuple(p.name for p in active), plan)
        self._forget_if_rates_changed()
        if key not in self.graphs and self.eager_runs.get(key, 0) < WARMUP:
            self.eager_runs[key] = self.eager_runs.get(key, 0) + 1
            self._warmup(idx, active, plan)
            return
        self.index.copy_(idx)
        if key not in self.graphs:
            self.graphs[key] = self._capture(active, plan)
            self.captures += 1
        self._replay(self.graphs[key], active, plan)

    # ------------------------------------------------------------------ the step itself
    def _body(self, idx: torch.Tensor, active: list[Phase], plan: tuple, weight: float = 1.0) -> None:
        n = len(idx)
        x, y = self.train_x.index_select(0, idx), self.train_y.index_select(0, idx)
        batch = self.model.training_batch(x, y, plan)
        for phase in active:
            phase.optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss, parts = phase.loss(batch)
            loss.backward()
            if self.world > 1:
                distributed.average_gradients(phase.parameters, weight)
            phase.optimizer.step()
            # one stacked add per phase and step: the engine's own cost stays small
            values = torch.stack(list(parts.values())).detach().double() * n
            if phase.name not in self.sums:
                self.sums[phase.name] = torch.zeros_like(values)
                self.keys[phase.name] = list(parts)
            self.sums[phase.name].add_(values)

    # ------------------------------------------------------------------ graphs
    def _rates(self) -> tuple[float, ...]:
        return tuple(float(g["lr"]) for p in self.phases for g in p.optimizer.param_groups)

    def _forget_if_rates_changed(self) -> None:
        rates = self._rates()
        if rates != self.captured_rates:
            self.graphs.clear()   # the learning rates are constants inside a captured Adam step
            self.captured_rates = rates

    def _warmup(self, idx: torch.Tensor, active: list[Phase], plan: tuple) -> None:
        if self.mode != "graph":
            self._body(idx, active, plan)
            return
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            self._body(idx, active, plan)
        torch.cuda.current_stream().wait_stream(self.side)

    def _capture(self, active: list[Phase], plan: tuple):
        missing = [p.name for p in active if p.name not in self.sums]
        if missing:   # a sum first made inside a capture would be reset by every replay
            raise RuntimeError(f"phases {missing} are captured before they ran eagerly")
        try:
            return self._record(active, plan)
        except RuntimeError as err:   # what CUDA raises for work a graph cannot hold
            raise CaptureFailed(f"capturing the training step as a CUDA graph failed ({first_cause(err)})") from err

    def _record(self, active: list[Phase], plan: tuple):
        """The step captured as a CUDA graph (static mode: True, nothing is captured)."""
        if self.mode != "graph":
            return True
        groups = [group for phase in self.phases for group in phase.optimizer.param_groups]
        for phase in self.phases:
            phase.optimizer.zero_grad(set_to_none=True)   # gradients come from the graph's pool
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.current_stream()
        try:
            for group in groups:
                group["capturable"] = True   # checked only while capturing; fused Adam's state is on the device
            with torch.cuda.graph(graph):   # a private memory pool per graph: they replay in any order
                self._body(self.index, active, plan)
        finally:
            for group in groups:
                group["capturable"] = False
            torch.cuda.set_stream(stream)   # a failed capture_end leaves its capture stream current
        return graph

    def finish(self) -> None:
        """After training: let go of gradients that live in a graph's memory pool."""
        if self.mode == "graph":
            for phase in self.phases:
                phase.optimizer.zero_grad(set_to_none=True)
            self.graphs.clear()

    def _replay(self, graph, active: list[Phase], plan: tuple) -> None:
        if self.mode == "graph":
            graph.replay()
        else:
            self._body(self.index, active, plan)


def first_cause(err: BaseException) -> str:
    """The first line of the error that spoiled a capture: when the capture's end fails after an error
    inside it, the error it raises has the first one as its context."""
    if err.__context__ is not None:
        err = err.__context__
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
