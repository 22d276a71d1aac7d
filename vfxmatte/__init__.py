"""vfxmatte: batch alpha matting for VFX pipelines.

The network is the two-path matting model of Liu, Ding and Jiang, "Towards Enhancing
Fine-grained Details for Image Matting" (WACV 2021): a U-Net Semantic Path on a ResNet
encoder plus a downsampling-free Textural Compensate Path.
"""

from __future__ import annotations

__version__ = "0.1.0"

from vfxmatte.errors import VfxMatteError  # noqa: E402

__all__ = ["__version__", "VfxMatteError"]
