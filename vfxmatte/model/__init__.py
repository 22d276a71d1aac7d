"""The two-path matting network of paper §3 (one file per block, wired in network.py)."""

from vfxmatte.model.config import R34, SMALL, TINY, VARIANTS, TCPMattingConfig, variant
from vfxmatte.model.network import (
    STRIDE,
    PathOutputs,
    TCPMatting,
    alpha_from_logits,
    build_model,
    tcp_matting_r34,
    tcp_matting_small,
    tcp_matting_tiny,
)
from vfxmatte.model.resnet import load_torchvision_weights, read_torchvision_file

__all__ = [
    "R34", "SMALL", "TINY", "VARIANTS", "STRIDE", "TCPMattingConfig", "variant", "PathOutputs", "TCPMatting",
    "alpha_from_logits", "build_model", "tcp_matting_r34", "tcp_matting_small", "tcp_matting_tiny",
    "load_torchvision_weights", "read_torchvision_file",
]
