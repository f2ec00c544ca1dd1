"""Build a job's pieces from its spec: device, task, seeded model, optimizer, and the RunInfo."""

from __future__ import annotations

import torch

from rnnlab.records import RunInfo
from rnnlab.spec import JobSpec

from .cells import RecurrentNet
from .errors import EngineError
from .init import init_weights
from .tasks import Task, make_task


def resolve_device(device: str) -> torch.device:
    """'auto' → cuda if available else cpu; 'cuda' without a GPU → EngineError. Called at run time only."""
    if device == "cpu":
        return torch.device("cpu")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise EngineError("device: got 'cuda' but no CUDA GPU is visible to this process; "
                          "use device: cpu or device: auto, or run it on a GPU worker")
    if device not in ("auto", "cuda"):
        raise EngineError(f"device: got {device!r}; allowed: auto, cpu, cuda")
    if not has_cuda:
        return torch.device("cpu")
    full_fp32_rnns()
    return torch.device("cuda", torch.cuda.current_device())


def full_fp32_rnns() -> None:
    """cuDNN's fused RNNs in full float32 (IEEE), as every other op here: torch's default for them is
    TF32 on GPUs that have it (``torch.backends.cudnn.rnn.fp32_precision = 'tf32'``), about 1e-4 relative
    against the probe's written-out cell, which runs plain float32 matmuls. Process-wide; a no-op on a
    torch without the setting."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        rnn.fp32_precision = "ieee"


def build_model(spec: JobSpec, task: Task) -> RecurrentNet:
    """The initialized network on the CPU; deterministic in spec.seed, global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        net = RecurrentNet(
            spec.cell, spec.act, spec.slope, task.input_size, spec.hidden_size, spec.num_layers,
            task.output_size, task.output_mode,
        )
        init_weights(net, spec.init, spec.init.forget_bias)
    return net


def make_optimizer(spec: JobSpec, net: RecurrentNet) -> torch.optim.Optimizer:
    o = spec.optimizer
    params = net.parameters()
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise EngineError(f"optimizer.name: got {o.name!r}; allowed: sgd, adam, rmsprop")


def run_info(spec: JobSpec, task: Task, net: RecurrentNet, device: str) -> RunInfo:
    return RunInfo(
        task=task.name, variant=task.variant, seq_len=task.probe(spec.probe.batch_size).x.shape[0],
        metric_name=task.metric_name, higher_is_better=task.higher_is_better,
        baseline_loss=float(task.baseline_loss), baseline_metric=float(task.baseline_metric),
        loss_name=task.loss_name, num_params=sum(p.numel() for p in net.parameters()),
        device=device, gamma=net.gamma(), param_names=[n for n, _ in net.named_params()],
        baseline_heldout_loss=task.baseline_heldout_loss(),
    )


def describe(spec: JobSpec) -> RunInfo:
    """The run's fixed facts (task, T, metric, baselines, parameters) without training or touching
    CUDA; ``device`` is the spec's value ('auto' is resolved only when training)."""
    task = make_task(spec.task, spec.seed)
    return run_info(spec, task, build_model(spec, task), spec.device)
