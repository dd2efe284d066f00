"""Unsupervised training of one fusion network for one modality pair.

``train(pair, method, out, ...)`` (and ``medfuse train``) trains on random patches of 2D slice
pairs: Harvard AANLIB slices (:mod:`medfuse.training.data`) or the axial slices of one's own
registered 3D volume pairs (``volumes=``, :mod:`medfuse.training.volumes`), split by whole case
(subject) into training and validation (``val_fraction``, 0 allowed), with the
content loss of the method's config (:class:`medfuse.losses.FusionLoss`) and, for ``mdgan``, the
least-squares adversarial loss of one discriminator per source. It is:

* **configured** by JSON: the package defaults (:data:`DEFAULT_CONFIG`), then the method's file
  ``medfuse/training/configs/<method>.json`` (and its ``"pairs": {pair: {...}}`` section for the
  pair being trained: a choice made for one task only), then the user's ``--config`` file (keys
  merged; unknown keys are an error);
* **seeded**: the seed sets the network initialization and a dedicated ``torch.Generator`` for
  patches; the split has its own ``split_seed`` so every method of a pair sees the same
  validation cases;
* **resumable**: the checkpoint (:mod:`medfuse.training.checkpoint`) holds the model, optimizer(s),
  iteration, RNG states, config and split; ``resume=True`` continues to ``iterations`` in total
  and gives the same weights as an uninterrupted run (on CPU);
* **safe**: checkpoints are written atomically and read with ``weights_only=True``; an existing
  output is never overwritten without ``force`` (or ``resume``);
* **fine-tunable**: ``init_from="shipped"`` (or a checkpoint) starts from trained weights with their
  architecture, at the config's ``fine_tune_lr`` (1e-4) unless ``lr`` is given; recorded in the
  checkpoint's ``provenance["init_from"]`` (docs/training.md).

The same code runs on a GPU (``device="cuda"``).

CPU time per iteration (method configs: ``light`` batch 16, the others batch 8; 128x128 crops;
one thread, torch 2.13; measured on a shared 2-core machine): ``light`` 0.16 s, ``msra`` 1.6 s,
``mdgan`` 2.3 s (with its two discriminators), ``fmmf`` 2.5 s. With two threads on a busy
machine expect 1-3x these: a 300-iteration ``light`` run took 2 minutes (0.39 s/iteration).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Mapping

from medfuse.errors import OutputExistsError, UnsupportedInputError
from medfuse.training.config import CONFIG_DIR, DEFAULT_CONFIG, load_config
from medfuse.training.config import loss_fn as _loss_fn

__all__ = ["DEFAULT_CONFIG", "CONFIG_DIR", "load_config", "train", "TrainingSummary"]

log = logging.getLogger(__name__)



def _lr_at(cfg: dict, iteration: int) -> float:
    if cfg["schedule"] == "constant":
        return float(cfg["lr"])
    t = min(iteration / max(cfg["iterations"], 1), 1.0)
    return float(cfg["lr_min"] + 0.5 * (cfg["lr"] - cfg["lr_min"]) * (1.0 + math.cos(math.pi * t)))


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class TrainingSummary(dict):
    """What :func:`train` returns: ``out``, ``iteration``, ``final`` (last logged losses),
    ``validation`` (last validation losses), ``seconds_per_iteration``, ``wall_seconds``, ``split``."""


def _evaluate(model, loss_fn, val_tensors, batch_size: int) -> dict[str, float]:
    """Mean content-loss terms over the validation pairs (whole slices)."""
    import torch

    from medfuse.inference import predict

    sums: dict[str, float] = {}
    count = 0
    model.eval()
    try:
        for x in val_tensors:  # (n, 2, H, W) groups of one size
            for start in range(0, x.shape[0], batch_size):
                chunk = x[start : start + batch_size]
                fused = predict(model, chunk, batch_size)
                with torch.no_grad():
                    total, terms = loss_fn(fused, chunk[:, :1], chunk[:, 1:])
                n = chunk.shape[0]
                for k, v in {"loss": float(total), **terms}.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                count += n
    finally:
        model.train()
    return {k: v / max(count, 1) for k, v in sums.items()}


def _group_by_size(pairs, device):
    import numpy as np
    import torch

    groups: dict[tuple, list] = {}
    for p in pairs:
        groups.setdefault(p.a.shape, []).append(np.stack([p.a, p.b]))
    return [torch.from_numpy(np.stack(v)).to(device) for v in groups.values()]


def _initial_weights(init_from: str | os.PathLike, pair: str, method: str) -> tuple[dict, dict]:
    """The checkpoint a fine-tuning run starts from and its provenance record.

    ``init_from`` is ``"shipped"`` (the weights shipped for ``pair``/``method``) or a checkpoint path.
    """
    import hashlib

    from medfuse.training.checkpoint import read_checkpoint

    if str(init_from).strip().lower() == "shipped":
        from medfuse.weights import shipped_weights, weights_path

        path = weights_path(pair, method)
        if path is None:
            have = ", ".join(f"{m} ({p})" for (p, m) in sorted(shipped_weights())) or "none"
            raise UnsupportedInputError(f"--init-from shipped: no weights are shipped for {method!r} and {pair!r} "
                                        f"(shipped: {have}); pass a checkpoint path instead")
        kind = "shipped"
    else:
        path = Path(init_from)
        if not path.is_file():
            raise FileNotFoundError("the --init-from checkpoint does not exist (give 'shipped' or a .pt checkpoint "
                                    "written by medfuse train)")
        kind = "checkpoint"
    init = read_checkpoint(path)
    name = init["network"]["name"]
    if name != method:
        raise UnsupportedInputError(f"--init-from: the checkpoint holds a {name!r} network, not {method!r}; pass "
                                    f"--method {name} to fine-tune it")
    if int(init["network"].get("spatial_dims", 2)) != 2:
        raise UnsupportedInputError("--init-from: only 2D networks can be fine-tuned on slices")
    if init.get("pair") not in (None, pair):
        log.warning("fine-tuning a network trained for %s on %s data", init.get("pair"), pair)
    record = {"kind": kind, "name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "pair": init.get("pair"), "iteration": int(init.get("iteration", 0))}
    log.info("fine-tuning from %s %s (%s/%s, %d iterations)", kind, path.name, init.get("pair"), name,
             record["iteration"])
    return init, record


def train(
    pair: str,
    method: str,
    out: str | os.PathLike,
    *,
    config: str | os.PathLike | Mapping | None = None,
    data_dir: str | os.PathLike | None = None,
    iterations: int | None = None,
    device: str = "cpu",
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    exclude_cases=None,
    volumes: str | os.PathLike | None = None,
    val_fraction: float | None = None,
    init_from: str | os.PathLike | None = None,
    lr: float | None = None,
) -> TrainingSummary:
    """Train ``method`` for ``pair`` and write the checkpoint ``out``.

    Args:
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``.
        method: ``fmmf``, ``mdgan``, ``msra`` or ``light``.
        out: checkpoint path (``.pt``), written atomically every ``checkpoint_every`` iterations,
            at the end and on Ctrl-C.
        config: JSON file or dict overriding the method's config.
        data_dir: Harvard-layout folder; default ``$MEDFUSE_HARVARD`` (unless ``volumes`` is given).
        volumes: instead of Harvard slices, one's own registered 3D volume pairs: a folder with one
            sub-folder per subject or a ``.csv``/``.json`` list (:mod:`medfuse.training.volumes`);
            axial slices inside the head, normalized as inference normalizes a 3D input.
        iterations: total iterations (overrides the config; with ``resume``, the new total).
        device: ``cpu`` or ``cuda[:n]``.
        seed: overrides the config's seed.
        resume: continue from ``out`` when it exists (its config and split are kept; ``config``
            is then ignored except for ``iterations``); start afresh when it does not.
        force: overwrite an existing ``out`` (start afresh).
        progress: show a tqdm progress bar with the losses.
        exclude_cases: case names held out entirely (neither training nor validation), e.g. the
            test fold of a cross-validation (:mod:`medfuse.training.cv`); recorded in the split.
        val_fraction: fraction of the cases (subjects) kept for validation, in [0, 1); 0 trains on
            all of them; default the config's ``val_fraction``. Ignored with ``resume``.
        init_from: fine-tune: ``"shipped"`` (the weights shipped for ``pair``/``method``) or a
            checkpoint path; the network keeps that checkpoint's architecture and starts from its
            weights, with learning rate ``lr`` or else the config's ``fine_tune_lr``. Recorded in
            the checkpoint's ``provenance["init_from"]``. Ignored with ``resume``.
        lr: learning rate (overrides the config's ``lr``, or ``fine_tune_lr`` with ``init_from``).

    Returns:
        A :class:`TrainingSummary`.

    Raises:
        OutputExistsError: ``out`` exists and neither ``resume`` nor ``force`` is set.
        UnsupportedInputError: bad pair/config/device/val_fraction, no data folder, both
            ``data_dir`` and ``volumes``, or an ``init_from`` checkpoint of another network.
        SpaceMismatchError: a volume pair not on one grid (not registered).
        FileNotFoundError, NotADirectoryError: missing data.
    """
    import torch
    from tqdm.auto import tqdm

    from medfuse.fusion import PAIRS
    from medfuse.inference import torch_device
    from medfuse.losses import adversarial_loss
    from medfuse.networks import SourceDiscriminators, build_network, count_parameters, network_name
    from medfuse.training.checkpoint import (
        make_checkpoint,
        network_from_checkpoint,
        read_checkpoint,
        save_checkpoint,
    )
    from medfuse.training.data import (
        PatchSampler,
        load_harvard_slices,
        load_phantom_slices,
        split_by_case,
        split_digest,
    )

    if pair not in PAIRS:
        raise UnsupportedInputError(f"pair must be one of {', '.join(PAIRS)}; got {pair!r}")
    method = network_name(method)
    out = Path(out)
    dev = torch_device(device)
    ckpt = None
    if out.exists() and not force:
        if not resume:
            raise OutputExistsError(f"{out} exists already; pass --resume to continue training it or --force to "
                                    "start again")
        ckpt = read_checkpoint(out)
        if ckpt.get("method") != method or ckpt.get("pair") != pair:
            raise UnsupportedInputError(f"{out} holds a {ckpt.get('method')!r} model for {ckpt.get('pair')!r}, not "
                                        f"{method!r} for {pair!r}; choose another --out")
    elif resume:
        log.info("%s does not exist yet: starting a new training run", out)

    init = init_record = None
    if ckpt is not None:
        cfg = ckpt["config"]
        ignored = [flag for flag, value in (("--config", config), ("--seed", seed), ("--val-fraction", val_fraction),
                                            ("--init-from", init_from), ("--lr", lr)) if value is not None]
        if ignored:
            log.warning("resuming %s: its stored config, seed, split and weights are used; %s ignored", out,
                        "/".join(ignored))
        init_record = ckpt.get("provenance", {}).get("init_from")
    else:
        cfg = load_config(method, config, pair=pair)
        if seed is not None:
            cfg["seed"] = int(seed)
        if val_fraction is not None:
            if not 0.0 <= float(val_fraction) < 1.0:
                raise UnsupportedInputError(f"--val-fraction must be in [0, 1) (0: no validation); got {val_fraction}")
            cfg["val_fraction"] = float(val_fraction)
        if init_from is not None:
            init, init_record = _initial_weights(init_from, pair, method)
            if cfg["network"]["kwargs"] != init["network"].get("kwargs", {}):
                log.info("fine-tuning: the network keeps the architecture of its initial weights")
            cfg["network"]["kwargs"] = dict(init["network"].get("kwargs", {}))
            cfg["lr"] = float(cfg["fine_tune_lr"])
        if lr is not None:
            if not lr > 0:
                raise UnsupportedInputError(f"--lr must be > 0; got {lr}")
            cfg["lr"] = float(lr)
        cfg["lr_min"] = min(float(cfg["lr_min"]), float(cfg["lr"]))
    if iterations is not None:
        if iterations < 1:
            raise UnsupportedInputError(f"iterations must be >= 1; got {iterations}")
        cfg["iterations"] = int(iterations)

    # ----- data and split
    if volumes is not None:
        if data_dir is not None:
            raise UnsupportedInputError("pass either --data (Harvard AANLIB slices) or --volumes (your own volume "
                                        "pairs), not both")
        from medfuse.training.volumes import load_volume_slices

        min_head = cfg.get("volumes", DEFAULT_CONFIG["volumes"])["min_head_fraction"]
        slices = load_volume_slices(volumes, pair, min_head_fraction=min_head)
        where = "the --volumes subjects"
        source = {"source": "volumes", "subjects": len({s.case for s in slices}), "min_head_fraction": min_head}
    else:
        if data_dir is None:
            data_dir = os.environ.get("MEDFUSE_HARVARD")
            if not data_dir:
                raise UnsupportedInputError("no training data: pass --data DIR (a Harvard AANLIB-layout folder), "
                                            "--volumes DIR_OR_LIST (registered volume pairs) or set $MEDFUSE_HARVARD")
        recolour = None
        if cfg["augment"].get("colormap", 0.0) > 0:  # the colours a 3D scan of this pair's modality is fused in
            from medfuse.color import default_colormap
            from medfuse.pairs import MODALITY_OF_PAIR

            recolour = default_colormap(MODALITY_OF_PAIR.get(pair))
        slices = load_harvard_slices(data_dir, pair, recolour=recolour)
        where = str(data_dir)
        source = {"source": "harvard", "data_dir_name": Path(data_dir).name}
    excluded = sorted(set(exclude_cases or ()))
    if ckpt is not None:
        excluded = list(ckpt["split"].get("excluded_cases", excluded))
    if excluded:
        slices = [s for s in slices if s.case not in set(excluded)]
        if not slices:
            raise UnsupportedInputError(f"{where}: every {pair} case is excluded ({excluded})")
    if ckpt is not None:
        train_cases, val_cases = list(ckpt["split"]["train_cases"]), list(ckpt["split"]["val_cases"])
    else:
        try:
            train_cases, val_cases = split_by_case([s.case for s in slices], cfg["val_fraction"], cfg["split_seed"])
        except ValueError as err:  # too few cases for a validation side
            raise UnsupportedInputError(f"{where}: {err} (--val-fraction 0 on the command line)") from None
    train_pairs = [s for s in slices if s.case in set(train_cases)]
    val_pairs = [s for s in slices if s.case in set(val_cases)]
    if not train_pairs:
        raise UnsupportedInputError(f"{where}: none of the training cases {train_cases} were found")
    if cfg["phantom"]["cases"] > 0:
        train_pairs += load_phantom_slices(pair, cfg["phantom"]["cases"], cfg["phantom"]["slices_per_case"],
                                           cfg["phantom"]["seed"])
    digest = split_digest(train_pairs)
    if ckpt is not None and ckpt["split"].get("train_sha256") != digest:
        log.warning("the training data differ from those %s was trained on (split sha256 changed)", out)
    loss_pairs = val_pairs  # the validation loss uses an evenly spaced, deterministic subset
    if len(val_pairs) > cfg["val_max_pairs"]:
        step = len(val_pairs) / cfg["val_max_pairs"]
        loss_pairs = [val_pairs[int(i * step)] for i in range(cfg["val_max_pairs"])]
    split = {
        "train_cases": train_cases, "val_cases": val_cases,
        "train_pairs": sorted(p.key for p in train_pairs), "val_pairs": sorted(p.key for p in val_pairs),
        "val_loss_pairs": sorted(p.key for p in loss_pairs),
        "train_sha256": digest, "val_fraction": cfg["val_fraction"], "split_seed": cfg["split_seed"],
        **source,
    }
    if excluded:
        split["excluded_cases"] = excluded
    log.info("%s/%s: %d training pairs (%d cases), %d validation pairs (%d cases; %d used for the validation loss)",
             method, pair, len(train_pairs), len(train_cases), len(val_pairs), len(val_cases), len(loss_pairs))

    # ----- model, optimizers, RNG
    torch.manual_seed(int(cfg["seed"]))
    net_cfg = {"name": method, "spatial_dims": int(cfg["network"]["spatial_dims"]),
               "kwargs": dict(cfg["network"]["kwargs"])}
    if ckpt is not None:
        model = network_from_checkpoint(ckpt, out)
    elif init is not None:
        model = network_from_checkpoint(init, init_record["name"])
    else:
        model = build_network(method, spatial_dims=net_cfg["spatial_dims"], **net_cfg["kwargs"])
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                           weight_decay=cfg["weight_decay"])
    adv = cfg["adversarial"]
    discs = opt_d = None
    if adv["weight"] > 0:
        discs = SourceDiscriminators(net_cfg["spatial_dims"], channels=adv["channels"],
                                     num_layers=adv["num_layers"]).to(dev).train()
        opt_d = torch.optim.Adam(discs.parameters(), lr=adv["lr"], betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(int(cfg["seed"]))
    sampler = PatchSampler(train_pairs, cfg["crop"], flip=cfg["augment"]["flip"], rot90=cfg["augment"]["rot90"],
                           min_foreground=cfg["augment"]["min_foreground"],
                           appearance=cfg["augment"]["appearance"], colormap=cfg["augment"].get("colormap", 0.0),
                           generator=generator)
    start, history, validation, train_seconds = 0, [], [], 0.0
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        if discs is not None:
            discs.load_state_dict(ckpt["discriminators"])
            opt_d.load_state_dict(ckpt["optimizer_d"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        generator.set_state(ckpt["rng"]["sampler"])
        start = int(ckpt["iteration"])
        history, validation = list(ckpt.get("history", [])), list(ckpt.get("validation", []))
        train_seconds = float(ckpt.get("provenance", {}).get("train_seconds", 0.0))
    loss_fn = _loss_fn(cfg)
    val_tensors = _group_by_size(loss_pairs, dev)

    def checkpoint(iteration: int) -> None:
        import monai

        from medfuse import __version__

        state = make_checkpoint(
            model, method, net_cfg["kwargs"], pair=pair, iteration=iteration, config=cfg, split=split,
            optimizer=opt.state_dict(), history=history, validation=validation,
            rng={"torch": torch.get_rng_state(), "sampler": generator.get_state()},
        )
        state["provenance"] = {
            "medfuse": __version__, "torch": str(torch.__version__), "monai": str(monai.__version__),
            "device": str(dev), "threads": torch.get_num_threads(), "git_commit": _git_commit(),
            "train_seconds": train_seconds, "seconds_per_iteration": train_seconds / max(iteration, 1),
            "parameters": count_parameters(model), "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if init_record is not None:
            state["provenance"]["init_from"] = init_record
        if discs is not None:
            state["discriminators"] = {k: v.detach().cpu() for k, v in discs.state_dict().items()}
            state["optimizer_d"] = opt_d.state_dict()
        save_checkpoint(state, out)

    if ckpt is None:  # claim the output early: a clash shows up before any training time is spent
        if out.exists() and force:
            log.info("overwriting %s", out)
        checkpoint(0)

    bar = tqdm(total=cfg["iterations"], initial=min(start, cfg["iterations"]), desc=f"{method}/{pair}",
               disable=not progress, dynamic_ncols=True)
    last: dict[str, float] = {}
    iteration = start
    run_start = time.perf_counter()
    run_iters = 0
    try:
        while iteration < cfg["iterations"]:
            t0 = time.perf_counter()
            lr = _lr_at(cfg, iteration)
            for group in opt.param_groups:
                group["lr"] = lr
            a, b = sampler.sample(cfg["batch_size"])
            a, b = a.to(dev), b.to(dev)
            fused = model(torch.cat([a, b], dim=1))
            content, terms = loss_fn(fused, a, b)
            loss = content
            if discs is not None:
                discs.requires_grad_(False)
                adv_g = adversarial_loss(discs.anatomical(fused), True, False) + \
                    adversarial_loss(discs.functional(fused), True, False)
                loss = content + adv["weight"] * adv_g
                terms["adv_g"] = float(adv_g.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            if discs is not None:
                discs.requires_grad_(True)
                f = fused.detach()
                loss_d = 0.5 * (
                    adversarial_loss(discs.anatomical(a), True, True) + adversarial_loss(discs.anatomical(f), False, True)
                    + adversarial_loss(discs.functional(b), True, True)
                    + adversarial_loss(discs.functional(f), False, True)
                )
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                terms["adv_d"] = float(loss_d.detach())
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"training diverged at iteration {iteration + 1} (loss {float(loss.detach())}); "
                                         "lower lr in the config")
            iteration += 1
            run_iters += 1
            train_seconds += time.perf_counter() - t0
            last = {"loss": float(loss.detach()), **terms}
            if iteration % cfg["log_every"] == 0 or iteration == cfg["iterations"]:
                history.append({"iteration": iteration, "lr": lr, **last})
                bar.set_postfix({k: f"{v:.4f}" for k, v in last.items()}, refresh=False)
            bar.update(1)
            if val_tensors and (iteration % cfg["val_every"] == 0 or iteration == cfg["iterations"]):
                val = _evaluate(model, loss_fn, val_tensors, cfg["batch_size"])
                validation.append({"iteration": iteration, **val})
                log.info("%s/%s iteration %d: validation %s", method, pair, iteration,
                         ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
            if iteration % cfg["checkpoint_every"] == 0 or iteration == cfg["iterations"]:
                checkpoint(iteration)
    except KeyboardInterrupt:
        log.warning("interrupted at iteration %d: saving %s (continue with --resume)", iteration, out)
        checkpoint(iteration)
        raise
    finally:
        bar.close()
    if run_iters == 0:
        log.info("%s has %d iterations already; nothing to do (raise --iterations to continue)", out, iteration)
    wall = time.perf_counter() - run_start
    return TrainingSummary(
        out=str(out), iteration=iteration, final=last, validation=validation[-1] if validation else {},
        seconds_per_iteration=train_seconds / max(iteration, 1), wall_seconds=wall, split=split,
    )
