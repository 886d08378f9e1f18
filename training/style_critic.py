"""A style critic that teaches the sampler to *use* its style clip (training only, torch).

Why: trained on reconstruction alone, the sampler learns to follow context and keyframe and ignores the style
clip (docs/quality.md: 1-2 % requested-style accuracy, chance 5 %). The critic is a small classifier of real
motion; its cross-entropy on the *generated* frames, for the style that was asked for, gives the sampler a
gradient towards that style, including when the style clip is of another style than the window (a style swap).

Independence from the benchmark's judge (training/style_classifier.py) is deliberate: the critic sees other
features (root-relative positions and velocities in the window's canonical frame, no rotations, no per-frame
facing), has another shape (k=5 convolutions, 128 channels), and is trained here, online, on the ground-truth
frames of training batches only. The eval's classifier is never loaded in training, so eval's style accuracy is
a second opinion, not the training target.

The critic learns from a replay buffer of recent real batches (RSMT's batches hold one style each; a classifier
trained on one-style batches would chase the last style it saw), and never from generated frames (it is a judge
of real motion, not an adversary).
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def critic_features(pos: Tensor, prev: Tensor) -> Tensor:
    """pos (B,T,J,3) global positions in the window's canonical frame, prev (B,J,3) the frame before ->
    (B,T,6J-3): joints 1..J-1 relative to the root, and every joint's velocity."""
    full = torch.cat([prev.unsqueeze(1), pos], 1)
    vel = full[:, 1:] - full[:, :-1]
    rel = pos[:, :, 1:] - pos[:, :, :1]
    return torch.cat([rel.flatten(2), vel.flatten(2)], -1)


class StyleCritic(nn.Module):
    """Two 'same' k=5 convolutions over time (ReLU), mean pooling, a linear head to the style classes."""

    def __init__(self, channels: int, n_styles: int, hidden: int = 128):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(channels))
        self.register_buffer("input_std", torch.ones(channels))
        self.conv1 = nn.Conv1d(channels, hidden, 5, padding=2)
        self.conv2 = nn.Conv1d(hidden, hidden, 5, padding=2)
        self.head = nn.Linear(hidden, n_styles)

    def hidden(self, feats: Tensor) -> Tensor:
        """(B,T,C) features -> (B,H,T) activations of the last convolution (what the statistics loss compares)."""
        x = ((feats - self.input_mean) / self.input_std).transpose(1, 2)
        return F.relu(self.conv2(F.relu(self.conv1(x))))

    def forward(self, feats: Tensor) -> Tensor:
        return self.head(self.hidden(feats).mean(-1))


def activation_statistics(h: Tensor) -> Tensor:
    """(B,H,T) activations -> (B,2H): each channel's mean and standard deviation over time (SMooDi's style
    statistics: what a style looks like to the critic, independent of where in the window it happens)."""
    return torch.cat([h.mean(-1), h.std(-1)], -1)


class CriticTrainer:
    """Keeps the critic a classifier of real motion: a replay buffer of real transition windows, one optimiser
    step per call to `learn`, and accuracy bookkeeping for the log."""

    def __init__(self, critic: StyleCritic, crop: int, lr: float = 1e-3, buffer_batches: int = 48):
        self.critic = critic
        self.crop = crop  # frames kept per real window (batches have different transition lengths)
        self.opt = torch.optim.Adam(critic.parameters(), lr=lr)
        self.buffer: deque[tuple[Tensor, Tensor]] = deque(maxlen=buffer_batches)

    def remember(self, feats: Tensor, style_index: int) -> None:
        start = int(torch.randint(0, feats.shape[1] - self.crop + 1, ()))
        feats = feats[:, start : start + self.crop]
        labels = torch.full((feats.shape[0],), style_index, dtype=torch.long, device=feats.device)
        self.buffer.append((feats.detach(), labels))

    def fit_normalisation(self) -> None:
        x = torch.cat([f for f, _ in self.buffer]).flatten(0, 1)
        with torch.no_grad():
            self.critic.input_mean.copy_(x.mean(0))
            self.critic.input_std.copy_(x.std(0).clamp(min=1e-3))

    def learn(self, n: int = 256, generator: torch.Generator | None = None) -> tuple[float, float]:
        """One step on a mixed-style minibatch drawn from the buffer -> (loss, accuracy)."""
        feats = torch.cat([f for f, _ in self.buffer])
        labels = torch.cat([y for _, y in self.buffer])
        idx = torch.randint(0, feats.shape[0], (min(n, feats.shape[0]),), device=feats.device,
                            generator=generator)
        self.critic.train()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        logits = self.critic(feats[idx])
        loss = F.cross_entropy(logits, labels[idx], label_smoothing=0.05)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        for p in self.critic.parameters():
            p.requires_grad_(False)
        self.critic.eval()
        acc = (logits.argmax(-1) == labels[idx]).float().mean()
        return float(loss.detach()), float(acc)

    def style_statistics(self) -> tuple[Tensor, Tensor, Tensor]:
        """Per style in the buffer, the mean of its real windows' activation statistics -> (table (S,2H), present
        (S,) bool, scale (2H,): each statistic's spread over all real windows, the unit the loss measures in)."""
        feats = torch.cat([f for f, _ in self.buffer])
        labels = torch.cat([y for _, y in self.buffer])
        n_styles = self.critic.head.out_features
        with torch.no_grad():
            stats = activation_statistics(self.critic.hidden(feats))
            table = torch.zeros(n_styles, stats.shape[1], device=stats.device)
            count = torch.zeros(n_styles, device=stats.device)
            table.index_add_(0, labels, stats)
            count.index_add_(0, labels, torch.ones_like(labels, dtype=stats.dtype))
            table = table / count.clamp(min=1).unsqueeze(1)
            scale = stats.std(0).clamp(min=1e-3)
        return table, count > 0, scale

    def statistics_loss(self, feats: Tensor, style_index: Tensor) -> Tensor:
        """L1 between the generated windows' activation statistics and the real ones of the asked-for style, in
        units of their spread over real windows; rows whose style is not in the buffer are left out. Differentiable
        w.r.t. feats only."""
        table, present, scale = self.style_statistics()
        keep = present[style_index]
        if not bool(keep.any()):
            return feats.sum() * 0.0
        gen = activation_statistics(self.critic.hidden(feats[keep]))
        return ((gen - table[style_index[keep]]).abs() / scale).mean()

    def judge(self, feats: Tensor, style_index: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy (differentiable w.r.t. feats, not the critic) and accuracy for the asked-for styles."""
        logits = self.critic(feats)
        return F.cross_entropy(logits, style_index), (logits.argmax(-1) == style_index).float().mean()
