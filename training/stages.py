"""The five training stages with checkpoint + resume, time boxes, progress and JSON-lines metrics.

Run folder layout (everything a later stage or the MAX side needs):
    config.json                      RSMTConfig (skeleton sizes filled from the data)
    skeleton.json                    model skeleton: names, parents, pos/rot joints, feet, mirror
    <stage>.ckpt                     torch checkpoint (models, optimiser, epoch, step, RNG) for --resume
    <stage>.safetensors              weights only (names in docs/model.md)
    <stage>.metrics.jsonl            one JSON object per epoch
    phases.npz                       per-frame phase labels (label-phases), tied to the data's split hash
Stages: phase -> label-phases -> manifold -> sampler -> phase-predictor.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rsmt_studio.motion import metrics as M
from rsmt_studio.training import batches as Bt
from rsmt_studio.training import networks as N
from rsmt_studio.training import rollout as Ro
from rsmt_studio.training import style_critic as SC
from rsmt_studio.training.config import RSMTConfig, StageConfig, atomic_write_text
from rsmt_studio.training.data import MotionData
from safetensors.torch import load_file, save_file

STAGES = ("phase", "label-phases", "manifold", "sampler", "phase-predictor")
LICENCE = "Trained on Bandai-Namco-Research-Motiondataset (© 2022 Bandai Namco Research Inc., CC BY-NC 4.0)"


# ------------------------------------------------------------------------------------------------ plumbing
class Progress:
    """A one-line progress bar on stderr (redrawn at most 4x/s); silent when quiet."""

    def __init__(self, label: str, total: int, quiet: bool = False):
        self.label, self.total, self.quiet = label, max(total, 1), quiet
        self.t0 = self.last = time.monotonic()

    def update(self, done: int, info: str = "") -> None:
        now = time.monotonic()
        if self.quiet or (now - self.last < 0.25 and done < self.total):
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{self.total} {now - self.t0:5.0f}s {info}   ")
        sys.stderr.flush()

    def close(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


@dataclass
class RunContext:
    """What every stage gets: config, data, run folder, device and budget."""

    cfg: RSMTConfig
    data: MotionData
    run_dir: Path
    device: torch.device
    minutes: float | None = None
    resume: bool = False
    init_from: Path | None = None  # warm start: a folder with <stage>.safetensors (no optimiser state)
    quiet: bool = False
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    t0: float = field(default_factory=time.monotonic)

    def out_of_time(self) -> bool:
        return self.minutes is not None and time.monotonic() - self.t0 > self.minutes * 60.0


def prepare_config(cfg: RSMTConfig, data: MotionData) -> RSMTConfig:
    """Fill skeleton-dependent sizes from the data."""
    cfg.skeleton.n_joints = data.ms.num_joints
    cfg.skeleton.n_pos_joints = data.ms.num_pos_joints
    cfg.skeleton.fps = data.fps
    return cfg


def write_run_files(ctx: RunContext) -> None:
    ms = ctx.data.ms
    ctx.cfg.save(ctx.run_dir / "config.json")
    skel = {
        "names": list(ms.names), "parents": ms.parents.tolist(), "offsets": ms.offsets.round(5).tolist(),
        "pos_joints": ms.pos_joints.tolist(), "rot_joints": ms.rot_joints.tolist(), "feet": ms.feet.tolist(),
        "left_hip": ms.left_hip, "right_hip": ms.right_hip, "mirror": ms.mirror.tolist(),
        "fps": ctx.data.fps, "split_hash": ctx.data.split_hash, "styles": ctx.data.style_names,
        "licence": LICENCE,
    }
    atomic_write_text(ctx.run_dir / "skeleton.json", json.dumps(skel, indent=1) + "\n")


def device_name(device: torch.device) -> str:
    """Hardware string recorded with every metrics row (the shipped manifest quotes it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def _atomic_torch_save(obj: object, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def export_weights(module: torch.nn.Module, path: Path, meta: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"licence": LICENCE, **(meta or {})})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_weights(module: torch.nn.Module, path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; train that stage first")
    module.load_state_dict(load_file(str(path)))


def _append_metrics(path: Path, row: dict[str, object]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def _stage_loop(
    ctx: RunContext,
    name: str,
    modules: dict[str, torch.nn.Module],
    params: list[torch.nn.Parameter],
    sc: StageConfig,
    train_step: Callable[[np.random.Generator, int], dict[str, float]],
    eval_fn: Callable[[], dict[str, float]],
    export: Callable[[], None],
    betas: tuple[float, float] = (0.5, 0.9),
) -> dict[str, object]:
    """Generic epoch loop: Adam(amsgrad), grad clipping, checkpoint every epoch and on time-out, resume."""
    ckpt = ctx.run_dir / f"{name}.ckpt"
    metrics = ctx.run_dir / f"{name}.metrics.jsonl"
    opt = torch.optim.AdamW(params, lr=sc.lr, betas=betas, weight_decay=sc.weight_decay, amsgrad=True)
    epoch, step = 0, 0
    rng = np.random.default_rng(sc.seed)
    torch.manual_seed(sc.seed)
    if ctx.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=ctx.device, weights_only=False)
        for k, m in modules.items():
            if k in state["modules"]:  # a module added since the checkpoint (e.g. the style critic) starts fresh
                m.load_state_dict(state["modules"][k])
        opt.load_state_dict(state["optimizer"])
        epoch, step = state["epoch"], state["step"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device
        if state.get("cuda_rng") is not None and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), ctx.device)
        ctx.log(f"{name}: resumed at epoch {epoch}, step {step}")
    elif ckpt.exists() and not ctx.resume:
        raise FileExistsError(f"{ckpt} exists: pass --resume to continue or choose another --run folder")
    elif ctx.init_from is not None:
        # Warm start from exported weights (e.g. the shipped assets) when the checkpoint is gone: the
        # optimiser and epoch counter start afresh, the weights do not.
        load_weights(next(iter(modules.values())), Path(ctx.init_from) / f"{name}.safetensors")
        ctx.log(f"{name}: initialised from {Path(ctx.init_from) / f'{name}.safetensors'}")
    steps = sc.steps_per_epoch or epoch_steps(ctx, sc)
    history: list[dict[str, object]] = []
    stopped = "epochs"
    while epoch < sc.epochs:
        for m in modules.values():
            m.train()
        bar = Progress(f"{name} epoch {epoch + 1}/{sc.epochs}", steps, ctx.quiet)
        sums: dict[str, float] = {}
        done = 0
        for i in range(steps):
            parts = train_step(rng, epoch)
            torch.nn.utils.clip_grad_norm_(params, sc.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            done += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(i + 1, f"loss {parts['loss']:.4f}")
            if ctx.out_of_time():
                break
        bar.close()
        epoch += 1
        row: dict[str, object] = {"stage": name, "epoch": epoch, "step": step,
                                  "elapsed_s": round(time.monotonic() - ctx.t0, 2), "device": device_name(ctx.device)}
        row.update({f"train_{k}": v / max(done, 1) for k, v in sums.items()})
        if epoch % sc.eval_every == 0 or epoch == sc.epochs or ctx.out_of_time():
            for m in modules.values():
                m.eval()
            with torch.no_grad():
                row.update({f"val_{k}": v for k, v in eval_fn().items()})
        _append_metrics(metrics, row)
        history.append(row)
        _atomic_torch_save({"modules": {k: m.state_dict() for k, m in modules.items()}, "optimizer": opt.state_dict(),
                            "epoch": epoch, "step": step, "numpy_rng": rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state(ctx.device) if ctx.device.type == "cuda" else None},
                           ckpt)
        export()
        ctx.log(json.dumps(row))
        if ctx.out_of_time():
            stopped = "time"
            break
    return {"stage": name, "epochs": epoch, "steps": step, "stopped": stopped, "history": history}


def epoch_steps(ctx: RunContext, sc: StageConfig) -> int:
    """Steps in one pass over the training frames at the configured window stride."""
    frames = int(ctx.data.lengths[ctx.data.sequences(False)].sum())
    return max(1, frames // (ctx.cfg.train.window_stride * sc.batch))


def _tensor(x: np.ndarray, ctx: RunContext) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), device=ctx.device)


# ------------------------------------------------------------------------------------------------ stages
def train_phase(ctx: RunContext) -> dict[str, object]:
    cfg, md = ctx.cfg, ctx.data
    sc = cfg.train.phase
    model = N.DeepPhase(cfg).to(ctx.device)
    n = cfg.phase.window

    def step(rng: np.random.Generator, epoch: int) -> dict[str, float]:
        x = _tensor(Bt.phase_batch(md, False, n, sc.batch, rng), ctx)
        rec, _ = model(x)
        loss = torch.nn.functional.mse_loss(rec, x - x.mean(-1, keepdim=True))
        loss.backward()
        return {"loss": loss.item()}

    eval_rng = np.random.default_rng(1234)
    val_x = _tensor(Bt.phase_batch(md, True, n, 256, eval_rng), ctx)

    def evaluate() -> dict[str, float]:
        rec, _ = model(val_x)
        return {"loss": float(torch.nn.functional.mse_loss(rec, val_x - val_x.mean(-1, keepdim=True)))}

    return _stage_loop(ctx, "phase", {"model": model}, list(model.parameters()), sc, step, evaluate,
                       lambda: export_weights(model, ctx.run_dir / "phase.safetensors"), betas=(0.9, 0.999))


def label_phases(ctx: RunContext, batch: int = 2048) -> dict[str, object]:
    """Run the trained DeepPhase on a window centred at EVERY frame (edges clamped) and save P and F."""
    cfg, md = ctx.cfg, ctx.data
    model = N.DeepPhase(cfg).to(ctx.device)
    load_weights(model, ctx.run_dir / "phase.safetensors")
    model.eval()
    total = len(md.pae_vel)
    phase = np.zeros((total, cfg.phase.n_phases, 2), np.float32)
    freq = np.zeros((total, cfg.phase.n_phases), np.float32)
    bar = Progress("label-phases", total, ctx.quiet)
    done = 0
    with torch.no_grad():
        for s in range(md.n_sequences):
            a, ln = int(md.starts[s]), int(md.lengths[s])
            for f0 in range(0, ln, batch):
                frames = np.arange(f0, min(f0 + batch, ln))
                x = _tensor(Bt.Fe.pae_windows(md.pae_vel[a : a + ln], cfg.phase.window, frames), ctx)
                out = model.encode(x)
                phase[a + frames] = out.phase.cpu().numpy()
                freq[a + frames] = out.frequency.cpu().numpy()
                done += len(frames)
            bar.update(done)
    bar.close()
    path = ctx.run_dir / "phases.npz"
    buf = io.BytesIO()
    np.savez_compressed(buf, phase=phase, frequency=freq, split_hash=np.array(md.split_hash))
    tmp = path.with_name(".phases.npz.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    amp = np.linalg.norm(phase, axis=-1)
    summary = {"stage": "label-phases", "frames": total, "amplitude_mean": float(amp.mean()),
               "frequency_mean_hz": float(freq.mean())}
    _append_metrics(ctx.run_dir / "label-phases.metrics.jsonl", summary)
    ctx.log(json.dumps(summary))
    return summary


def load_labels(ctx: RunContext) -> Bt.PhaseLabels:
    path = ctx.run_dir / "phases.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run `rsmt-studio train label-phases` first")
    with np.load(path) as z:
        if str(z["split_hash"]) != ctx.data.split_hash:
            raise ValueError(f"{path}: labels were made for another dataset (split hash differs)")
        return Bt.PhaseLabels(z["phase"], z["frequency"])


def train_manifold(ctx: RunContext) -> dict[str, object]:
    cfg, md = ctx.cfg, ctx.data
    sc, tc = cfg.train.manifold, cfg.train
    labels = load_labels(ctx)
    model = N.Manifold(cfg).to(ctx.device)
    kin = Ro.Kinematics(md.ms)
    length = tc.manifold_clip

    def step(rng: np.random.Generator, epoch: int) -> dict[str, float]:
        b = Ro.to_torch(Bt.manifold_batch(md, labels, False, length, sc.batch, rng), ctx.device)
        losses = Ro.manifold_rollout(model, kin, b, tc.kl_weight, tc.contact_weight if epoch >= 1 else 0.0)
        losses.total.backward()
        return {"loss": losses.total.item(), "pos": losses.pos.item(), "rot": losses.rot.item(),
                "kl": losses.kl.item(), "contact": losses.contact.item()}

    val = Ro.to_torch(Bt.manifold_batch(md, labels, True, length, 128, np.random.default_rng(99)), ctx.device)

    def evaluate() -> dict[str, float]:
        torch.manual_seed(0)
        ls = Ro.manifold_rollout(model, kin, val, tc.kl_weight, tc.contact_weight)
        return {"loss": ls.total.item(), "pos": ls.pos.item(), "rot": ls.rot.item()}

    return _stage_loop(ctx, "manifold", {"model": model}, list(model.parameters()), sc, step, evaluate,
                       lambda: export_weights(model, ctx.run_dir / "manifold.safetensors"))


def _transition_length(tc, epoch: int, rng: np.random.Generator) -> int:
    p = min(epoch / max(tc.curriculum_epochs, 1), 1.0)
    hi = tc.min_transition + round((tc.max_transition - tc.min_transition) * p)
    return int(rng.integers(tc.min_transition, hi + 1))


def _sampler_setup(ctx: RunContext) -> tuple[N.TransitionSampler, N.MixtureDecoder, Bt.PhaseLabels, Ro.Kinematics]:
    cfg = ctx.cfg
    labels = load_labels(ctx)
    manifold = N.Manifold(cfg)
    load_weights(manifold, ctx.run_dir / "manifold.safetensors")
    decoder = manifold.decoder.to(ctx.device)
    for prm in decoder.parameters():
        prm.requires_grad_(False)
    decoder.eval()
    sampler = N.TransitionSampler(cfg).to(ctx.device)
    return sampler, decoder, labels, Ro.Kinematics(ctx.data.ms)


def _sampler_val(ctx: RunContext, labels: Bt.PhaseLabels) -> list[tuple[dict[str, torch.Tensor], torch.Tensor, int]]:
    """Fixed held-out problems at the longest training length (one batch per style that has test data)."""
    cfg, md = ctx.cfg, ctx.data
    length = cfg.train.max_transition
    rng = np.random.default_rng(7)
    out = []
    styles = Bt.sampler_styles(md, True, Bt.Fe.KeyframeProtocol(length).window, cfg.sampler.style_frames)
    for s in styles[:8]:
        b = Bt.sampler_batch(md, labels, True, length, cfg.sampler.style_frames, 16, rng, style=s)
        out.append((Ro.to_torch(b.window, ctx.device), _tensor(b.style, ctx), length))
    return out


def _splice_val(ctx: RunContext, labels: Bt.PhaseLabels) -> list[tuple[dict[str, torch.Tensor], torch.Tensor, int]]:
    """Fixed held-out spliced problems (held-out dataset-2 takes only), one batch of 16 per style B; empty when
    the held-out side has no cross-style pair. A loss to watch, not a judge."""
    cfg, md = ctx.cfg, ctx.data
    length = cfg.train.max_transition
    pool = Bt.SplicePool(md, test=True)
    rng = np.random.default_rng(8)
    out = []
    for s in sorted(pool.partners(Bt.Fe.KeyframeProtocol(length).window)):
        b = Bt.spliced_sampler_batch(md, labels, True, length, cfg.sampler.style_frames, 16, rng, style=s, pool=pool,
                                     half_life=cfg.train.splice_half_life)
        out.append((Ro.to_torch(b.window, ctx.device), _tensor(b.style, ctx), length))
    return out


# The joints whose twist on their parent the position losses miss (docs/quality.md, iteration 7's diagnostic).
CHAIN_JOINTS = ("Spine", "Chest", "Neck", "Head", "Shoulder_L", "Shoulder_R")


def _planted_heights(md: MotionData) -> np.ndarray:
    """Each foot joint's planted height over the training takes, as eval measures it on real frames."""
    seqs = md.sequences(False)
    frames = np.concatenate([np.arange(md.starts[s], md.starts[s] + md.lengths[s]) for s in seqs])
    return M.planted_heights(md.gpos[frames], np.asarray(md.ms.feet))


def train_sampler(ctx: RunContext) -> dict[str, object]:
    """RSMT's sampler stage, plus (when `style_weight` > 0) a style critic on the generated frames and (when
    `style_swap` > 0) rows whose style clip is of another style: they keep context and keyframe, so they are
    scored on landing, contacts, phase and a down-weighted pose term, and on reading as the asked-for style;
    and (when `splice` > 0) that fraction of batches spliced across styles (Bt.spliced_sampler_batch: context
    of style A, transition and keyframe of style B, same content), scored with all the usual losses."""
    cfg, md = ctx.cfg, ctx.data
    sc, tc = cfg.train.sampler, cfg.train
    sampler, decoder, labels, kin = _sampler_setup(ctx)
    mean, std = Bt.style_statistics(md, cfg.sampler.style_frames, np.random.default_rng(5))
    with torch.no_grad():
        sampler.style_encoder.input_mean.copy_(torch.as_tensor(mean))
        sampler.style_encoder.input_std.copy_(torch.as_tensor(std))
    zdim = 2 * cfg.sampler.latent
    n_past = tc.n_past
    critic = _critic_setup(ctx, labels) if tc.style_weight > 0 or tc.style_stat_weight > 0 else None
    style_index = {s: i for i, s in enumerate(md.style_names)}
    # Recipe B's style-code head: the style encoder's mean token must tell the styles apart, so the codes cannot
    # collapse to one (RSMT issue 10). Trained with the sampler; not part of the exported sampler.
    style_head = (torch.nn.Linear(cfg.sampler.style_hidden, len(md.style_names)).to(ctx.device)
                  if tc.style_code_weight > 0 else None)
    steps_done = [0]
    head_joint = md.ms.names.index("Head") if "Head" in md.ms.names else None
    parents_t = torch.as_tensor(np.asarray(md.ms.parents), dtype=torch.long, device=ctx.device)
    if (tc.head_weight > 0 or tc.head_turn_weight > 0 or tc.head_peak_weight > 0) and head_joint is None:
        raise ValueError("--head-weight / --head-turn-weight / --head-peak-weight: the training skeleton has no joint "
                         "named Head")
    chain = [md.ms.names.index(n) for n in CHAIN_JOINTS if n in md.ms.names]
    if tc.chain_rot_weight > 0 and not chain:
        raise ValueError(f"--chain-rot-weight: the training skeleton has none of {', '.join(CHAIN_JOINTS)}")
    chain_t = torch.as_tensor(chain, dtype=torch.long, device=ctx.device)
    feet_t = torch.as_tensor(np.asarray(md.ms.feet), dtype=torch.long, device=ctx.device)
    planted_t = (torch.as_tensor(_planted_heights(md), dtype=torch.float32, device=ctx.device)
                 if tc.skate_weight > 0 else None)

    def ramp() -> float:
        return 1.0 if tc.style_ramp_steps <= 0 else min(1.0, steps_done[0] / tc.style_ramp_steps)

    def real_features(w: dict[str, torch.Tensor], length: int) -> torch.Tensor:
        return SC.critic_features(w["pos"][:, n_past : n_past + length], w["pos"][:, n_past - 1])

    pool = Bt.SplicePool(md) if tc.splice > 0 else None

    def step(rng: np.random.Generator, epoch: int) -> dict[str, float]:
        length = _transition_length(tc, epoch, rng)
        spliced = pool is not None and rng.random() < tc.splice
        if spliced:  # context of style A, the rest (keyframe too) of style B: all the usual losses
            b = Bt.spliced_sampler_batch(md, labels, False, length, cfg.sampler.style_frames, sc.batch, rng,
                                         pool=pool, half_life=tc.splice_half_life)
        else:
            b = Bt.sampler_batch(md, labels, False, length, cfg.sampler.style_frames, sc.batch, rng)
        w = Ro.to_torch(b.window, ctx.device)
        style = b.style.copy()
        asked = np.full(sc.batch, style_index[b.style_name])
        n_swap = 0 if spliced else round(tc.style_swap * sc.batch)
        if n_swap:
            other = _other_style(md, b.style_name, rng)
            seqs = md.sequences(False)
            style[-n_swap:] = Bt.style_windows(md, seqs[md.styles[seqs] == other], cfg.sampler.style_frames,
                                               n_swap, rng)
            asked[-n_swap:] = style_index[other]
        z = torch.randn(sc.batch, zdim, device=ctx.device) * cfg.sampler.noise_std
        out = Ro.sampler_rollout(sampler, decoder, w, _tensor(style, ctx), length, z)
        own = slice(0, sc.batch - n_swap)
        w_own = {k: v[own] for k, v in w.items()}
        ls = Ro.sampler_losses(Ro.take_output(out, own), kin, w_own, length, contact_weight=tc.sampler_contact_weight)
        total = ls.total * (sc.batch - n_swap) / sc.batch
        parts: dict[str, float] = {}
        gen_pos = kin.positions(out.p, out.r, w["offsets"])
        if n_swap:
            sw = slice(sc.batch - n_swap, sc.batch)
            w_sw = {k: v[sw] for k, v in w.items()}
            lw = Ro.sampler_losses(Ro.take_output(out, sw), kin, w_sw, length,
                                   contact_weight=tc.sampler_contact_weight)
            swap_total = (tc.style_swap_recon * (lw.pos + lw.rot) + lw.last + tc.style_swap_phase * lw.phase
                          + tc.sampler_contact_weight * lw.contact)
            if tc.style_swap_smooth > 0:
                rough = Ro.excess_acceleration(gen_pos[sw], w_sw["pos"], length, n_past) / kin.bone_scale
                swap_total = swap_total + tc.style_swap_smooth * rough
                parts["swap_rough"] = rough.item()
            total = total + swap_total * n_swap / sc.batch
            parts["swap_last"] = lw.last.item()
        parts["spliced"] = float(spliced)
        asked_t = torch.as_tensor(asked, device=ctx.device)
        if critic is not None:
            if not spliced:  # the critic's buffer holds single takes only
                critic.remember(real_features(w_own, length), style_index[b.style_name])
            parts["critic_loss"], parts["critic_acc"] = critic.learn()
            gen = SC.critic_features(gen_pos, w["pos"][:, n_past - 1])
            ce, acc = critic.judge(gen, asked_t)
            if tc.style_weight > 0:
                total = total + ramp() * tc.style_weight * ce
            parts["style_ce"], parts["style_acc"] = ce.item(), acc.item()
            if tc.style_stat_weight > 0:
                stat = critic.statistics_loss(gen, asked_t)
                total = total + ramp() * tc.style_stat_weight * stat
                parts["style_stat"] = stat.item()
        if style_head is not None:
            code = style_head(sampler.style_encoder(_tensor(style, ctx)).mean(1))
            code_ce = torch.nn.functional.cross_entropy(code, asked_t)
            total = total + tc.style_code_weight * code_ce
            parts["code_ce"] = code_ce.item()
            parts["code_acc"] = (code.argmax(-1) == asked_t).float().mean().item()
        # The head terms hold the head within the ground truth's range; a style-swapped row's truth is of the
        # context's style, so with head_own_rows they skip those rows (docs/quality.md, iteration 11's verdict).
        head_rows, w_head = (own, w_own) if tc.head_own_rows else (slice(None), w)
        head_share = (sc.batch - n_swap) / sc.batch if tc.head_own_rows else 1.0
        head_args = (head_joint, int(md.ms.parents[head_joint]), length, n_past) if head_joint is not None else ()
        if tc.head_weight > 0:
            head = Ro.excess_head_motion(out.r[head_rows], w_head["r"], *head_args)
            total = total + tc.head_weight * head * head_share
            parts["head_excess"] = head.item()
        if tc.head_turn_weight > 0:
            turn = Ro.excess_head_turn(out.r[head_rows], w_head["r"], *head_args)
            total = total + tc.head_turn_weight * turn * head_share
            parts["head_turn_excess"] = turn.item()
        if tc.head_peak_weight > 0:
            peak = Ro.excess_head_peak(out.r[head_rows], w_head["r"], *head_args)
            total = total + tc.head_peak_weight * peak * head_share
            parts["head_peak_excess"] = peak.item()
        if tc.head_landing_weight > 0 and head_args:  # the keyframe is every row's input: all rows
            landing = Ro.excess_head_landing(out.r, w["r"], *head_args)
            total = total + tc.head_landing_weight * landing
            parts["head_landing_excess"] = landing.item()
        if tc.head_departure_weight > 0 and head_args:  # continuity with the context: all rows
            departure = Ro.excess_head_departure(out.r, w["r"], *head_args)
            total = total + tc.head_departure_weight * departure
            parts["head_departure_excess"] = departure.item()
        if tc.chain_rot_weight > 0:
            chain_err = Ro.chain_rotation_error(out.r[own], w_own["r"], parents_t, chain_t, length, n_past)
            total = total + tc.chain_rot_weight * chain_err * (sc.batch - n_swap) / sc.batch
            parts["chain_rot"] = chain_err.item()
        if planted_t is not None:
            skate = Ro.excess_foot_skate(gen_pos, w["pos"], feet_t, planted_t, length, n_past)
            total = total + tc.skate_weight * skate
            parts["skate_excess"] = skate.item()
        if tc.foot_height_weight > 0:
            lift = Ro.foot_height_error(gen_pos, w["pos"], feet_t, length, n_past)
            total = total + tc.foot_height_weight * lift
            parts["foot_height_error"] = lift.item()
        if tc.seam_weight > 0:
            seam = Ro.excess_seam_motion(out.r, w["r"], parents_t, length, n_past)
            total = total + tc.seam_weight * seam
            parts["seam_excess"] = seam.item()
        steps_done[0] += 1
        total.backward()
        return {"loss": total.item(), "pos": ls.pos.item(), "rot": ls.rot.item(), "last": ls.last.item(),
                "contact": ls.contact.item(), "phase": ls.phase.item(), "length": float(length), **parts}

    val = _sampler_val(ctx, labels)
    val_splice = _splice_val(ctx, labels) if tc.splice > 0 else []

    def evaluate() -> dict[str, float]:
        tot: dict[str, float] = {}
        for prefix, problems in (("", val), ("splice_", val_splice)):
            for w, style, length in problems:
                z = torch.zeros(w["p"].shape[0], zdim, device=ctx.device)
                ls = Ro.sampler_losses(Ro.sampler_rollout(sampler, decoder, w, style, length, z), kin, w, length)
                for k in ("total", "pos", "rot", "last", "phase"):
                    tot[prefix + k] = tot.get(prefix + k, 0.0) + float(getattr(ls, k)) / len(problems)
        tot["loss"] = tot.pop("total")
        if "splice_total" in tot:
            tot["splice_loss"] = tot.pop("splice_total")
        return tot

    modules: dict[str, torch.nn.Module] = {"model": sampler}
    params = list(sampler.parameters())
    if critic is not None:
        modules["critic"] = critic.critic  # checkpointed with the sampler; trained by its own optimiser
    if style_head is not None:
        modules["style_head"] = style_head
        params += list(style_head.parameters())
    return _stage_loop(ctx, "sampler", modules, params, sc, step, evaluate,
                       lambda: export_weights(sampler, ctx.run_dir / "sampler.safetensors"))


def _other_style(md: MotionData, style: str, rng: np.random.Generator) -> str:
    seqs = md.sequences(False)
    choices = [s for s in md.style_names if s != style and (md.styles[seqs] == s).any()]
    return choices[int(rng.integers(len(choices)))]


def _critic_setup(ctx: RunContext, labels: Bt.PhaseLabels, warmup_batches: int = 48,
                  warmup_steps: int = 400) -> SC.CriticTrainer:
    """A fresh critic, trained on real training windows before the sampler sees its gradient (a few seconds on
    a GPU), or restored from the sampler checkpoint when resuming (then its buffer refills as training goes)."""
    cfg, md, tc = ctx.cfg, ctx.data, ctx.cfg.train
    n_joints = md.ms.num_joints
    critic = SC.StyleCritic(6 * n_joints - 3, len(md.style_names)).to(ctx.device)
    trainer = SC.CriticTrainer(critic, crop=tc.min_transition)
    rng = np.random.default_rng(11)
    index = {s: i for i, s in enumerate(md.style_names)}
    resuming = ctx.resume and (ctx.run_dir / "sampler.ckpt").exists()
    n_fill = 8 if resuming else warmup_batches
    for _ in range(n_fill):
        b = Bt.sampler_batch(md, labels, False, tc.max_transition, cfg.sampler.style_frames, 64, rng)
        w = Ro.to_torch(b.window, ctx.device)
        trainer.remember(SC.critic_features(w["pos"][:, tc.n_past : tc.n_past + tc.max_transition],
                                            w["pos"][:, tc.n_past - 1]), index[b.style_name])
    if resuming:
        return trainer  # weights and normalisation come back with the checkpoint
    trainer.fit_normalisation()
    loss = acc = float("nan")
    for _ in range(warmup_steps):
        loss, acc = trainer.learn()
    ctx.log(f"style critic: {warmup_steps} warm-up steps on real windows, loss {loss:.3f}, batch accuracy {acc:.3f}")
    return trainer


def train_phase_predictor(ctx: RunContext) -> dict[str, object]:
    """Train only the initial-phase predictor through the frozen sampler's rollout, plus a direct phase loss."""
    cfg, md = ctx.cfg, ctx.data
    sc, tc = cfg.train.phase_predictor, cfg.train
    sampler, decoder, labels, kin = _sampler_setup(ctx)
    load_weights(sampler, ctx.run_dir / "sampler.safetensors")
    for prm in sampler.parameters():
        prm.requires_grad_(False)
    sampler.eval()
    pred = N.InitialPhasePredictor(cfg).to(ctx.device)
    zdim = 2 * cfg.sampler.latent

    def losses(w: dict[str, torch.Tensor], style: torch.Tensor, length: int, z: torch.Tensor):
        out = Ro.sampler_rollout(sampler, decoder, w, style, length, z, initial=pred)
        ls = Ro.sampler_losses(out, kin, w, length)
        direct = torch.nn.functional.mse_loss(out.initial_phase, w["phase"][:, Bt.Fe.N_PAST - 1])
        return ls.total + 0.5 * direct, ls, direct

    def step(rng: np.random.Generator, epoch: int) -> dict[str, float]:
        length = _transition_length(tc, tc.curriculum_epochs, rng)
        b = Bt.sampler_batch(md, labels, False, length, cfg.sampler.style_frames, sc.batch, rng)
        w = Ro.to_torch(b.window, ctx.device)
        z = torch.zeros(sc.batch, zdim, device=ctx.device)
        total, ls, direct = losses(w, _tensor(b.style, ctx), length, z)
        total.backward()
        return {"loss": total.item(), "phase_direct": direct.item(), "pos": ls.pos.item()}

    val = _sampler_val(ctx, labels)

    def evaluate() -> dict[str, float]:
        tot = {"loss": 0.0, "phase_direct": 0.0, "pos": 0.0}
        for w, style, length in val:
            total, ls, direct = losses(w, style, length, torch.zeros(w["p"].shape[0], zdim, device=ctx.device))
            tot["loss"] += total.item() / len(val)
            tot["phase_direct"] += direct.item() / len(val)
            tot["pos"] += ls.pos.item() / len(val)
        return tot

    return _stage_loop(ctx, "phase-predictor", {"model": pred}, list(pred.parameters()), sc, step, evaluate,
                       lambda: export_weights(pred, ctx.run_dir / "phase-predictor.safetensors"))


RUNNERS: dict[str, Callable[[RunContext], dict[str, object]]] = {
    "phase": train_phase,
    "label-phases": label_phases,
    "manifold": train_manifold,
    "sampler": train_sampler,
    "phase-predictor": train_phase_predictor,
}
