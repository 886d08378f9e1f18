"""`rsmt-studio train STAGE`: preprocess data and train the RSMT networks (needs the `train` extra for torch).

Stages, in order: preprocess -> phase -> label-phases -> manifold -> sampler -> phase-predictor; `cost` prints
parameters and multiply-adds per generated frame for a config. torch is imported only when a stage needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STAGES = ("preprocess", "phase", "label-phases", "manifold", "sampler", "phase-predictor", "check", "cost")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPLITS = REPO / "training" / "splits"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="what to run (stages in training order)")
    g = parser.add_argument_group("data (preprocess)")
    g.add_argument("--bandai", type=Path, help="Bandai `dataset` folder (Bandai-Namco-Research-Motiondataset-*)")
    g.add_argument("--style100", type=Path, help="100STYLE folder (<Style>/<Style>_<Kind>.bvh, Frame_Cuts.csv)")
    g.add_argument("--out", type=Path, help="preprocessed dataset to write (.npz)")
    g.add_argument("--splits", type=Path, default=None,
                   help=f"write train.txt/test.txt split lists here (committed lists: {DEFAULT_SPLITS})")
    g.add_argument("--per-group", type=int, default=0,
                   help="keep at most N takes per (dataset, content, style): small datasets for tests")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    t = parser.add_argument_group("training")
    t.add_argument("--data", type=Path, help="preprocessed dataset (.npz from `train preprocess`)")
    t.add_argument("--run", type=Path, help="run folder: config, checkpoints, weights, metrics")
    t.add_argument("--config", type=Path, help="JSON config (see training/configs/); default: the run's own")
    t.add_argument("--preset", choices=("full", "small", "tiny"), help="use a width preset instead of --config")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    t.add_argument("--minutes", type=float, default=None, help="time box: checkpoint and stop after this long")
    t.add_argument("--resume", action="store_true", help="continue from the stage's checkpoint")
    t.add_argument("--init-from", type=Path, default=None,
                   help="start the stage from <DIR>/<stage>.safetensors (e.g. the shipped assets) instead of random")
    t.add_argument("--epochs", type=int, default=None, help="override the stage's epoch count")
    t.add_argument("--steps", type=int, default=None, help="override the stage's steps per epoch")
    t.add_argument("--batch", type=int, default=None, help="override the stage's batch size")
    t.add_argument("--lr", type=float, default=None, help="override the stage's learning rate")
    t.add_argument("--contact-weight", type=float, default=None, help="sampler: foot-contact loss weight")
    t.add_argument("--style-weight", type=float, default=None,
                   help="sampler: weight of the style critic's cross-entropy on generated frames (0 = off)")
    t.add_argument("--style-swap", type=float, default=None,
                   help="sampler: fraction of each batch given a style clip of another style")
    t.add_argument("--style-swap-recon", type=float, default=None,
                   help="sampler: pose-reconstruction weight on the style-swapped rows")
    t.add_argument("--style-swap-phase", type=float, default=None,
                   help="sampler: phase-loss weight on the style-swapped rows (0 = free timing)")
    t.add_argument("--style-swap-smooth", type=float, default=None,
                   help="sampler: weight of acceleration beyond the ground truth's on the style-swapped rows")
    t.add_argument("--style-stat-weight", type=float, default=None,
                   help="sampler: critic-feature statistics of generated frames vs real takes of the asked style")
    t.add_argument("--style-code-weight", type=float, default=None,
                   help="sampler: style-classification loss on the style encoder's mean token")
    t.add_argument("--style-ramp-steps", type=int, default=None,
                   help="sampler: steps over which the style terms ramp in")
    t.add_argument("--head-weight", type=float, default=None,
                   help="sampler: weight of the head's turning on the neck beyond the ground truth's (all rows)")
    t.add_argument("--seam-weight", type=float, default=None,
                   help="sampler: weight of the local-rotation speed across the seams beyond the ground truth's (all rows)")
    t.add_argument("--head-turn-weight", type=float, default=None,
                   help="sampler: weight of the head's turn on the neck away from the last context frame beyond the "
                        "ground truth's (all rows)")
    t.add_argument("--chain-rot-weight", type=float, default=None,
                   help="sampler: weight of the local-rotation error of the spine, neck, head and shoulders "
                        "(own-style rows)")
    t.add_argument("--head-peak-weight", type=float, default=None,
                   help="sampler: weight of the head's farthest turn on the neck from the last context frame beyond "
                        "the ground truth's farthest (all rows)")
    t.add_argument("--skate-weight", type=float, default=None,
                   help="sampler: weight of eval's foot skate (speed of low feet) beyond the ground truth's (all rows)")
    t.add_argument("--foot-height-weight", type=float, default=None,
                   help="sampler: weight of the batch's mean lowest-foot height away from the ground truth's "
                        "(all rows)")
    t.add_argument("--head-landing-weight", type=float, default=None,
                   help="sampler: weight of the head-on-neck rotation's distance to the keyframe's over the last "
                        "three generated frames, beyond the ground truth's (all rows)")
    t.add_argument("--head-departure-weight", type=float, default=None,
                   help="sampler: weight of the head-on-neck rotation's first three steps out of the last context "
                        "frame, beyond the ground truth's (all rows)")
    t.add_argument("--head-own-rows", action="store_true", default=None,
                   help="sampler: apply the head terms to own-style rows only, not to style-swapped rows (whose "
                        "ground truth is of the context's style)")
    t.add_argument("--curriculum-epochs", type=int, default=None,
                   help="sampler: epochs over which transition lengths grow to the longest (a fine-tune that "
                        "should stay on shorter transitions passes more)")
    t.add_argument("--splice", type=float, default=None,
                   help="sampler: fraction of batches of spliced cross-style rows (context style A, rest style B)")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--no-mirror", action="store_true", help="skip mirrored copies (faster loading)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40],
                   help="check: transition lengths to score on held-out windows")


def _err(msg: str) -> int:
    print(f"rsmt-studio train: {msg}", file=sys.stderr)
    return 2


def _preprocess(args: argparse.Namespace) -> int:
    from rsmt_studio.training import data as D

    if not (args.bandai or args.style100):
        return _err("preprocess needs --bandai and/or --style100")
    if not args.out:
        return _err("preprocess needs --out FILE.npz")
    if args.out.exists() and not args.overwrite:
        return _err(f"{args.out} exists (pass --overwrite to replace it)")
    from rsmt_studio.motion import BVHError

    try:
        records = D.records_for(args.bandai, args.style100)
    except (FileNotFoundError, BVHError, ValueError) as exc:
        return _err(str(exc))
    if args.per_group:
        records = D.subset(records, args.per_group)
    test = D.committed_split(records)  # listed takes keep their side; the rule assigns the rest
    if args.splits:
        tr, te = D.write_split_lists(records, test, args.splits)
        print(f"split lists: {tr} ({len(records) - len(test)} clips), {te} ({len(test)} clips)")

    def progress(i: int, n: int, key: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"\rpreprocess {i + 1}/{n} {key[:60]:60s}")
            if i + 1 == n:
                sys.stderr.write("\n")

    try:
        summary = D.preprocess(records, test, args.out, progress=progress)
    except (BVHError, ValueError) as exc:
        return _err(str(exc))
    print(json.dumps(summary))
    return 0


def _config(args: argparse.Namespace):
    from rsmt_studio.training.config import RSMTConfig, preset

    run_cfg = args.run / "config.json" if args.run else None
    if args.preset and args.config:
        raise ValueError("give --config or --preset, not both")
    if args.preset:
        cfg = preset(args.preset)
    elif args.config:
        cfg = RSMTConfig.load(args.config)
    elif run_cfg and run_cfg.exists():
        cfg = RSMTConfig.load(run_cfg)
    else:
        raise ValueError("no config: pass --config FILE, --preset NAME, or a --run folder that has config.json")
    if run_cfg and run_cfg.exists():
        existing = RSMTConfig.load(run_cfg)
        for part in ("phase", "manifold", "sampler", "phase_predictor"):
            if getattr(existing, part) != getattr(cfg, part):
                raise ValueError(f"{run_cfg}: this run was made with other {part} widths; use a new --run folder")
    return cfg


def _train(args: argparse.Namespace) -> int:
    try:
        import torch
    except ModuleNotFoundError:
        return _err("training needs PyTorch: pip install 'rsmt-studio[train]' (torch==2.13.0)")
    from rsmt_studio.training import stages as S
    from rsmt_studio.training.data import MotionData

    if not args.data or not args.run:
        return _err(f"{args.stage} needs --data FILE.npz and --run DIR")
    if not args.data.is_file():
        return _err(f"{args.data}: no such preprocessed dataset (run `rsmt-studio train preprocess`)")
    try:
        cfg = _config(args)
    except (ValueError, OSError) as exc:
        return _err(str(exc))
    if args.device == "cuda" and not torch.cuda.is_available():
        return _err("--device cuda: no CUDA device visible to torch")
    if args.threads:
        torch.set_num_threads(args.threads)
    key = args.stage.replace("-", "_")
    if key in ("phase", "manifold", "sampler", "phase_predictor"):
        sc = getattr(cfg.train, key)
        if args.epochs is not None:
            sc.epochs = args.epochs
        if args.steps is not None:
            sc.steps_per_epoch = args.steps
        if args.batch is not None:
            sc.batch = args.batch
        if args.lr is not None:
            sc.lr = args.lr
    for flag, field_name in (("contact_weight", "sampler_contact_weight"), ("style_weight", "style_weight"),
                             ("style_swap", "style_swap"), ("style_swap_recon", "style_swap_recon"),
                             ("splice", "splice"), ("style_swap_phase", "style_swap_phase"),
                             ("style_swap_smooth", "style_swap_smooth"), ("style_stat_weight", "style_stat_weight"),
                             ("style_code_weight", "style_code_weight"), ("style_ramp_steps", "style_ramp_steps"),
                             ("head_weight", "head_weight"), ("seam_weight", "seam_weight"),
                             ("curriculum_epochs", "curriculum_epochs"), ("head_turn_weight", "head_turn_weight"),
                             ("chain_rot_weight", "chain_rot_weight"), ("head_peak_weight", "head_peak_weight"),
                             ("head_own_rows", "head_own_rows"), ("skate_weight", "skate_weight"),
                             ("foot_height_weight", "foot_height_weight"),
                             ("head_landing_weight", "head_landing_weight"),
                             ("head_departure_weight", "head_departure_weight")):
        if getattr(args, flag) is not None:
            setattr(cfg.train, field_name, getattr(args, flag))
    if not 0.0 <= cfg.train.style_swap < 1.0:
        return _err(f"--style-swap {cfg.train.style_swap}: expected a fraction in [0, 1)")
    if not 0.0 <= cfg.train.splice <= 1.0:
        return _err(f"--splice {cfg.train.splice}: expected a fraction in [0, 1]")
    args.run.mkdir(parents=True, exist_ok=True)

    def progress(i: int, n: int, key: str) -> None:
        if not args.quiet and (i % 50 == 0 or i + 1 == n):
            sys.stderr.write(f"\rloading {i + 1}/{n}")
            if i + 1 == n:
                sys.stderr.write("\n")

    try:
        data = MotionData.load(args.data, mirror=not args.no_mirror, progress=progress)
    except ValueError as exc:
        return _err(str(exc))
    cfg = S.prepare_config(cfg, data)
    ctx = S.RunContext(cfg=cfg, data=data, run_dir=args.run, device=torch.device(args.device),
                       minutes=args.minutes, resume=args.resume, quiet=args.quiet,
                       init_from=args.init_from)
    S.write_run_files(ctx)
    try:
        result = S.RUNNERS[args.stage](ctx)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        print(f"\n{args.stage}: interrupted; the last epoch's checkpoint is in {args.run}", file=sys.stderr)
        return 130
    result.pop("history", None)
    print(json.dumps(result))
    return 0


def _cost(args: argparse.Namespace) -> int:
    from rsmt_studio.training.config import RSMTConfig, preset
    from rsmt_studio.training.cost import cost, cost_table

    if args.config:
        cfgs = {args.config.stem: RSMTConfig.load(args.config)}
    elif args.preset:
        cfgs = {args.preset: preset(args.preset)}
    else:
        cfgs = {n: preset(n) for n in ("full", "small", "tiny")}
    print(cost_table(cfgs))
    for name, cfg in cfgs.items():
        k = cost(cfg)
        print(json.dumps({"config": name, "params": k.params, "macs_per_frame": k.macs_per_frame,
                          "step_macs": k.step_macs, "style_macs": k.style_macs, "sequence_macs": k.sequence_macs,
                          "initial_phase_macs": k.initial_phase_macs}))
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        import torch
    except ModuleNotFoundError:
        return _err("check needs PyTorch: pip install 'rsmt-studio[train]' (torch==2.13.0)")
    from rsmt_studio.training import stages as S
    from rsmt_studio.training.check import position_errors
    from rsmt_studio.training.data import MotionData
    from rsmt_studio.training.reference import load_run

    if not args.data or not args.run:
        return _err("check needs --data FILE.npz and --run DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = load_run(args.run, args.device)
        data = MotionData.load(args.data, mirror=not args.no_mirror)
        ctx = S.RunContext(cfg=models.cfg, data=data, run_dir=args.run, device=models.device, quiet=True)
        labels = S.load_labels(ctx)
    except (FileNotFoundError, ValueError) as exc:
        return _err(str(exc))
    result = position_errors(models, data, labels, args.lengths)
    print("| L | model (label phase) | model (predicted phase) | lerp | hold |")
    print("|---|---|---|---|---|")
    for length, r in result.items():
        print(f"| {length} | {r['model']:.2f} | {r.get('model_predicted_phase', float('nan')):.2f} | "
              f"{r['lerp']:.2f} | {r['hold']:.2f} |")
    print(json.dumps({"mean_joint_error": result}))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.stage == "check":
        return _check(args)
    if args.stage == "preprocess":
        return _preprocess(args)
    if args.stage == "cost":
        return _cost(args)
    return _train(args)
