"""Reading rendered frames back as numpy: which pixels show a character's colour, and where joints land.

Used by the tests (skeleton pixels near projected joints, none far away) and the benchmark's sanity check.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PySide6.QtGui import QImage


def image_to_rgb(image: QImage) -> np.ndarray:
    """(H,W,3) float32 in [0,1] from any QImage."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).astype(np.float32) / 255.0


def hue_mask(rgb: np.ndarray, colour: tuple[float, float, float], hue_tol_deg: float = 14.0,
             min_saturation: float = 0.45, min_value: float = 0.2) -> np.ndarray:
    """Pixels whose hue is within ``hue_tol_deg`` of ``colour``'s and clearly saturated (shading-proof)."""
    target_h = colorsys.rgb_to_hsv(*colour)[0] * 360.0
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    d = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) * 60.0
    diff = np.abs((hue - target_h + 180.0) % 360.0 - 180.0)
    return (diff < hue_tol_deg) & (sat > min_saturation) & (mx > min_value)


def distance_to_segments(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each 2-D point (N,2) to the nearest segment a[k]-b[k] (K,2)."""
    p = points[:, None, :].astype(np.float64)
    ab = (b - a)[None].astype(np.float64)
    t = np.clip(((p - a[None]) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    closest = a[None] + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=-1).min(axis=1)
